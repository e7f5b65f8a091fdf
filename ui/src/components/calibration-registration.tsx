/**
 * Step 4 of the calibration page: the registration check. Registers the newest
 * camera frame to the golden reference of the live model package (or of a
 * package folder on the station, e.g. a taught candidate before it is pushed)
 * with `POST /api/calibration/reference/check`, and shows the overlay (the
 * reference in red, the frame in cyan, before and after the warp), the shift
 * (reference px, frame px, mm when a plane exists), the rotation, the quality
 * against the package's minimum, and a pass/fail badge. A frame that cannot be
 * registered is a result (not registered, with the reason), not an error.
 */
import { useEffect, useState } from 'preact/hooks';
import { calibrationApi, type ApiError, type CalReferenceCheck } from '../api.js';

const sg = (v: number, d: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(d)}`;

export function CalibrationRegistration({ admin, runKey }: { admin: boolean; runKey: number }) {
  const [dir, setDir] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const [r, setR] = useState<CalReferenceCheck | null>(null);

  const run = async (): Promise<void> => {
    if (!admin || busy) return;
    setBusy(true); setErr(null);
    try {
      setR(await calibrationApi.referenceCheck(dir.trim() ? { packageDir: dir.trim() } : {}));
    } catch (e) { setErr(`${(e as ApiError).code}: ${(e as ApiError).message}`); setR(null); } finally { setBusy(false); }
  };
  useEffect(() => { if (runKey > 0) void run(); }, [runKey]); // the page's key binding

  return (
    <section class="calib-step" data-testid="calib-registration">
      <h3>Registration to the golden reference</h3>
      <div class="calib-form">
        <label>package folder <input value={dir} onInput={(e) => setDir((e.target as HTMLInputElement).value)} placeholder="empty: the live model" size={30}
          data-testid="reg-package" /></label>
        <button onClick={() => void run()} disabled={!admin || busy} data-testid="reg-check">{busy ? 'checking…' : 'Check registration'} <kbd>c</kbd></button>
      </div>
      {err ? <p class="error" data-testid="reg-error">{err}</p> : null}
      {!r && !err ? <p class="muted">Registers the newest frame to the model package's golden reference, as the station does with every part.</p> : null}
      {r ? (
        <>
          <dl class="facts" data-testid="reg-facts">
            <dt>result</dt><dd><span class={`verdict ${r.ok ? 'verdict-pass' : 'verdict-reject'}`} data-testid="reg-badge">{r.ok ? 'registered' : 'not registered'}</span></dd>
            {r.reason ? <><dt>why</dt><dd class="error" data-testid="reg-reason">{r.reason}</dd></> : null}
            <dt>shift</dt><dd data-testid="reg-shift">{sg(r.dx, 2)}, {sg(r.dy, 2)} px (limit ±{r.maxShiftPx})
              <br /><span class="muted">{sg(r.frameShiftPx.dx, 1)}, {sg(r.frameShiftPx.dy, 1)} frame px</span>
              {r.shiftMm ? <><br /><span data-testid="reg-shift-mm">{sg(r.shiftMm.dx, 2)}, {sg(r.shiftMm.dy, 2)} mm</span></> : null}</dd>
            <dt>rotation</dt><dd data-testid="reg-rotation">{sg(r.angleDeg, 2)}° (limit ±{r.maxRotationDeg}°)</dd>
            <dt>quality</dt><dd data-testid="reg-quality" class={r.quality >= r.minQuality ? '' : 'error'}>{r.quality.toFixed(3)} {r.quality >= r.minQuality ? '≥' : '<'} {r.minQuality} minimum</dd>
            <dt>reference</dt><dd>{r.model.name}@{r.model.version} · <code>{r.model.reference}</code> {r.referenceSize.width}×{r.referenceSize.height}</dd>
            <dt>frame</dt><dd class="muted">{r.frame.source} {r.frame.width}×{r.frame.height}{r.undistorted ? ' · undistorted (lens)' : ''} · {r.ms.toFixed(0)} ms</dd>
          </dl>
          <div class="calib-pair">
            <figure><figcaption>red: golden reference · cyan: frame — left as seen, right after the warp</figcaption>
              <img src={r.overlayUrl} alt="registration overlay" data-testid="reg-overlay" /></figure>
          </div>
        </>
      ) : null}
    </section>
  );
}
