/**
 * Calibration: walks an installer through lens → plane → ROI → golden
 * reference on the live frame (step 4: the frame registered to the model's
 * golden reference, with its overlay), with the focus/exposure figures of the live
 * frame beside it all the time, and the calibration versions (activate = roll
 * back). Reading needs any login; saving needs admin (the server checks too).
 * Every save is a new version; the running station puts it in force between two parts (no restart).
 */
import { useEffect, useState } from 'preact/hooks';
import { calibrationApi, type ApiError, type CalDoc, type CalPoint, type CalRoi, type CalVersion, type User } from '../api.js';
import { useKeys } from '../components/keys.js';
import { CalibrationFrame, type FrameTool } from '../components/calibration-frame.js';
import { CalibrationChecks } from '../components/calibration-checks.js';
import { CalibrationLens } from '../components/calibration-lens.js';
import { CalibrationRegistration } from '../components/calibration-registration.js';
import { fmtMm } from '../components/calibration-mm.js';

const STEPS = ['Lens', 'Plane', 'ROI', 'Golden reference'] as const;
const DEFAULT_FRAME = { width: 1280, height: 1024 };

export function CalibrationPage({ user }: { user: User }) {
  const admin = user.role === 'admin';
  const [step, setStep] = useState(0);
  const [doc, setDoc] = useState<CalDoc | null>(null);
  const [versions, setVersions] = useState<CalVersion[]>([]);
  const [loadErr, setLoadErr] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [frozen, setFrozen] = useState(false);
  const [roiDraft, setRoiDraft] = useState<CalRoi | null>(null);
  const [points, setPoints] = useState<CalPoint[]>([]);
  const [mm, setMm] = useState({ w: 80, h: 60 });
  const [checksKey, setChecksKey] = useState(0);
  const [regRun, setRegRun] = useState(0);

  const load = async (): Promise<void> => {
    try {
      const [cur, list] = await Promise.all([calibrationApi.current(), calibrationApi.versions()]);
      setDoc(cur?.doc ?? null); setVersions(list); setLoadErr(null);
    } catch (e) { setLoadErr(`${(e as ApiError).code}: ${(e as ApiError).message}`); }
  };
  useEffect(() => { void load(); }, []);
  const frame = doc?.frame ?? DEFAULT_FRAME;

  const act = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try { const msg = await fn(); setNote(typeof msg === 'string' ? msg : `${what}: saved`); await load(); setChecksKey((k) => k + 1); } catch (e) { setNote(`${what}: ${(e as ApiError).code} ${(e as ApiError).message}`); }
  };
  const saveRoi = (): void => { if (roiDraft) void act('ROI', async () => { await calibrationApi.roi(roiDraft); setRoiDraft(null); }); };
  const planeMm: CalPoint[] = [{ x: 0, y: 0 }, { x: mm.w, y: 0 }, { x: mm.w, y: mm.h }, { x: 0, y: mm.h }];
  const fitPlane = (): void => {
    void act('plane', async () => {
      const r = await calibrationApi.plane(points, planeMm.slice(0, points.length));
      setPoints([]);
      return `plane saved: ${r.mmPerPx.toFixed(4)} mm/px, residual ${r.residualMm.toFixed(3)} mm`;
    });
  };

  useKeys('Calibration', [
    { keys: ['1', '2', '3', '4'], help: 'step: lens, plane, ROI, golden reference', display: '1 … 4', run: (e) => setStep(Number(e.key) - 1) },
    { keys: ['f'], help: 'freeze / resume the live frame', run: () => setFrozen((v) => !v) },
    { keys: ['s'], help: 'save the drawn ROI (step 3)', run: saveRoi, when: () => step === 2 && !!roiDraft && admin },
    { keys: ['c'], help: 'check the registration to the golden reference (step 4)', run: () => setRegRun((k) => k + 1), when: () => step === 3 && admin },
    { keys: ['Escape'], help: 'drop the drawn ROI / marked points', run: () => { setRoiDraft(null); setPoints([]); } },
    { keys: ['Backspace'], help: 'remove the last marked point (step 2)', run: () => setPoints((p) => p.slice(0, -1)), when: () => step === 1 },
    { keys: ['g'], help: 'reload', run: () => void load() },
  ]);

  const tool: FrameTool = !admin ? 'none' : step === 1 ? (points.length < 4 ? 'points' : 'none') : step === 2 ? 'rect' : 'none';
  const rects: Array<{ roi: CalRoi; kind: 'stored' | 'draft' }> = [];
  if (doc?.roi && step !== 1) rects.push({ roi: doc.roi, kind: 'stored' });
  if (roiDraft && step === 2) rects.push({ roi: roiDraft, kind: 'draft' });
  const shownPoints = step === 1 ? (points.length ? points : doc?.plane?.source === 'points' && !doc.plane.undistorted ? doc.plane.imagePoints : []) : [];

  return (
    <div class="calib" data-testid="calibration-page">
      <div class="calib-main">
        <ol class="stepper" data-testid="calib-stepper">
          {STEPS.map((s, i) => {
            const done = [doc?.lens, doc?.plane, doc?.roi, doc?.checks ?? doc?.golden][i];
            return <li key={s} class={`${i === step ? 'on' : ''} ${done ? 'done' : ''}`} onClick={() => setStep(i)}><kbd>{i + 1}</kbd> {s} {done ? '✓' : ''}</li>;
          })}
          <li class="spacer" />
          <li class="muted">{doc ? `version ${doc.version}` : 'not calibrated'}{admin ? '' : ' · saving needs admin'}</li>
        </ol>
        {loadErr ? <p class="error">{loadErr}</p> : null}
        {note ? <p class="flash" data-testid="calib-note">{note}</p> : null}
        {step === 0 ? <CalibrationLens lens={doc?.lens} admin={admin} onSaved={() => void load()} /> : (
          <div class="calib-work">
            <div class="calib-frame-col">
              <div class="toolbar">
                <button class={frozen ? 'on' : ''} onClick={() => setFrozen(!frozen)} data-testid="calib-freeze">{frozen ? 'frozen' : 'live'} <kbd>f</kbd></button>
                <span class="muted">
                  {step === 1 ? 'click the four corners of a known rectangle in order: top-left, top-right, bottom-right, bottom-left' : step === 2 ? 'drag a rectangle around where parts are inspected' : 'the live frame with the ROI'}
                </span>
              </div>
              {step === 3 ? <CalibrationRegistration admin={admin} runKey={regRun} /> : null}
              <CalibrationFrame frame={frame} tool={tool} frozen={frozen} rects={rects} points={shownPoints}
                onRect={setRoiDraft} onPoint={(p) => setPoints((ps) => (ps.length < 4 ? [...ps, p] : ps))} />
            </div>
            <div class="calib-step">
              {step === 1 ? <>
                <h3>Plane and scale</h3>
                <p class="muted">Marked {points.length} of 4 points. The rectangle measures:</p>
                <div class="calib-form">
                  <label>width mm <input type="number" class="n" min={0.1} value={mm.w} onInput={(e) => setMm({ ...mm, w: Number((e.target as HTMLInputElement).value) })} /></label>
                  <label>height mm <input type="number" class="n" min={0.1} value={mm.h} onInput={(e) => setMm({ ...mm, h: Number((e.target as HTMLInputElement).value) })} /></label>
                </div>
                <table class="grid"><thead><tr><th>#</th><th>px</th><th>mm</th></tr></thead><tbody>
                  {points.map((p, i) => <tr key={i}><td>{i + 1}</td><td>{p.x.toFixed(1)}, {p.y.toFixed(1)}</td><td>{planeMm[i]!.x}, {planeMm[i]!.y}</td></tr>)}
                </tbody></table>
                <p><button disabled={!admin || points.length < 4} onClick={fitPlane} data-testid="plane-fit">fit plane</button>{' '}
                  <button disabled={!points.length} onClick={() => setPoints([])}>clear <kbd>Esc</kbd></button></p>
                {doc?.plane ? (
                  <dl class="facts" data-testid="plane-facts">
                    <dt>scale</dt><dd>{doc.plane.mmPerPx.toFixed(4)} mm/px ({(1 / doc.plane.mmPerPx).toFixed(2)} px/mm)</dd>
                    <dt>x / y</dt><dd>{doc.plane.mmPerPxX.toFixed(4)} / {doc.plane.mmPerPxY.toFixed(4)} mm/px</dd>
                    <dt>residual</dt><dd>{doc.plane.residualMm.toFixed(3)} mm</dd>
                    <dt>from</dt><dd>{doc.plane.source === 'board' ? 'a board image' : `${doc.plane.imagePoints.length} marked points`}{doc.plane.undistorted ? ', undistorted first' : ''}</dd>
                    <dt>frame</dt><dd>{fmtMm(frame.width * doc.plane.mmPerPxX)} × {fmtMm(frame.height * doc.plane.mmPerPxY)} mm</dd>
                  </dl>
                ) : <p class="muted">No plane yet: sizes are shown in pixels.</p>}
              </> : null}
              {step === 2 ? <>
                <h3>Region of interest</h3>
                {roiDraft ? <p data-testid="roi-draft">new: {roiDraft.x}, {roiDraft.y}, {roiDraft.width}×{roiDraft.height} px</p> : <p class="muted">Drag on the frame to draw it.</p>}
                <p><button disabled={!admin || !roiDraft} onClick={saveRoi} data-testid="roi-save">save ROI <kbd>s</kbd></button>{' '}
                  <button disabled={!roiDraft} onClick={() => setRoiDraft(null)}>drop <kbd>Esc</kbd></button></p>
                <p data-testid="roi-stored">{doc?.roi ? `stored: ${doc.roi.x}, ${doc.roi.y}, ${doc.roi.width}×${doc.roi.height} px` : 'no ROI stored: the whole frame is checked'}
                  {doc?.roi && doc.plane ? ` (${fmtMm(doc.roi.width * doc.plane.mmPerPxX)} × ${fmtMm(doc.roi.height * doc.plane.mmPerPxY)} mm)` : ''}</p>
              </> : null}
              {step === 3 ? <>
                <h3>Golden reference</h3>
                {doc?.golden ? <p>reference: <code>{doc.golden.reference}</code>{doc.golden.note ? ` — ${doc.golden.note}` : ''}</p>
                  : <p class="muted">No golden reference in the calibration file: packages with registration carry their own. Check how the live frame registers to it on the left.</p>}
                <h3>Focus / exposure reference</h3>
                {doc?.checks ? (
                  <dl class="facts" data-testid="checks-reference">
                    <dt>sharpness</dt><dd>{doc.checks.reference.tenengrad.toFixed(0)} (alarm below −{(doc.checks.bands.sharpnessDropMax * 100).toFixed(0)} %)</dd>
                    <dt>mean grey</dt><dd>{doc.checks.reference.mean.toFixed(1)} (± {doc.checks.bands.meanDeltaMax})</dd>
                    <dt>saturated</dt><dd>{(doc.checks.reference.saturatedFraction * 100).toFixed(2)} % (max {(doc.checks.bands.saturatedMax * 100).toFixed(1)} %)</dd>
                  </dl>
                ) : <p class="muted">No reference: only saturation is judged.</p>}
                <p><button disabled={!admin} onClick={() => void act('focus/exposure reference', () => calibrationApi.referenceFromLive())} data-testid="reference-live">
                  use the live frame as the reference</button></p>
              </> : null}
            </div>
          </div>
        )}
      </div>
      <aside class="calib-side">
        <CalibrationChecks refreshKey={checksKey} />
        <section data-testid="calib-versions">
          <h3>Versions</h3>
          {versions.length === 0 ? <p class="muted">none saved yet</p> : null}
          <table class="grid"><tbody>
            {[...versions].reverse().map((v) => (
              <tr key={v.version} class={v.current ? 'cursor' : ''}>
                <td>v{v.version}</td><td title={v.createdAt}>{new Date(v.createdAt).toLocaleString()}<br /><span class="muted">{v.createdBy}: {v.sections.join(', ') || '–'}</span></td>
                <td>{v.current ? <span class="verdict verdict-pass">current</span>
                  : <button disabled={!admin} onClick={() => void act(`v${v.version}`, () => calibrationApi.activate(v.version))}>activate</button>}</td>
              </tr>
            ))}
          </tbody></table>
          <p class="muted small">A saved or activated version is put in force by the running station between two parts: the live model is re-loaded with the new lens table, no restart.</p>
        </section>
      </aside>
    </div>
  );
}
