/**
 * Label one part: the frame at full resolution (zoom, pan, heatmap), the
 * verdict (true defect / false reject / unsure), the defect class and the
 * defect regions. Every change is saved at once through the label saver
 * (localStorage first, then PUT with the revision), so a reload, a crash or a
 * dropped network loses nothing. Every edit can be undone (Ctrl+Z) and redone
 * (Ctrl+Shift+Z, Ctrl+Y): the undone state is saved like any edit, so the server
 * follows. Regions are drawn with the label's class name; a new region on a label
 * without a class gets the current class (the picker: the label's class, else the
 * last one picked, else the model's, else the first). Everything has a key; `?` lists them.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, LABEL_NAMES, type LabelVerdict, type Part, type Region, type User } from '../api.js';
import { labelSaver } from '../label-saver.js';
import { LabelHistory } from '../label-history.js';
import { navigate, type Route } from '../router.js';
import { useKeys } from '../components/keys.js';
import { ImageViewer, type Tool } from '../components/ImageViewer.js';
import { usePartImages } from '../components/part-images.js';
import { Explain } from '../components/Explain.js';
import { VerdictBadge } from '../components/StatusPill.js';
import { queueOrder, rememberQueue } from './queue-order.js';
import { apiFilter, filterFromQuery } from './Review.js';
import { fmtMm, regionMm, usePlane } from '../components/calibration-mm.js';

interface Draft { verdict: LabelVerdict | null; defectClass: string | null; regions: Region[] }
const EMPTY: Draft = { verdict: null, defectClass: null, regions: [] };
const PALETTE = ['#4fc3f7', '#81c784', '#ffb74d', '#ba68c8', '#f06292', '#4db6ac', '#dce775', '#90a4ae', '#ff8a65'];

/** What each verdict means for this part: for a pass, "false reject" is stored as "good". */
function verdictText(v: LabelVerdict, part: Part | null): string {
  if (part?.verdict === 'pass') return v === 'true_defect' ? 'defect (escape)' : v === 'false_reject' ? 'good' : 'unsure';
  return LABEL_NAMES[v];
}

export function LabelPage({ route, classes }: { route: Route; classes: string[]; user: User }) {
  const runId = route.params[0] ?? '';
  const seq = Number(route.params[1]);
  const back = route.query.toString();
  const [part, setPart] = useState<Part | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [draft, setDraftState] = useState<Draft>(EMPTY);
  const draftRef = useRef<Draft>(EMPTY); // the latest edit, even before a re-render (fast key presses)
  const setDraft = (d: Draft): void => { draftRef.current = d; setDraftState(d); };
  const [restored, setRestored] = useState(false);
  const [tool, setTool] = useState<Tool>('select');
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [heat, setHeat] = useState(true);
  const [note, setNote] = useState<string | null>(null);
  const [revision, setRevision] = useState(0);
  const history = useRef(new LabelHistory());
  const [, setHistoryTick] = useState(0); // re-render the undo / redo buttons
  const [picked, setPicked] = useState<string | null>(null); // the class picked for new regions while the label has none
  const markedReviewed = useRef(false); // labelling a part counts as reviewing it (once per visit)
  const imgs = usePartImages(part);
  const plane = usePlane(); // mm figures for the regions when the station has a plane calibration

  useEffect(() => {
    let live = true;
    setPart(null); setError(null); setDraft(EMPTY); setSelectedId(null); setTool('select'); setNote(null);
    history.current.clear(); setHistoryTick((t) => t + 1);
    markedReviewed.current = false;
    Promise.all([api.part(runId, seq), api.threshold()]).then(([p, threshold]) => {
      if (!live) return;
      setPart({ ...p, threshold: p.threshold ?? threshold });
      const serverRev = p.label?.revision ?? 0;
      labelSaver.setServerLabel(runId, seq, p.label ?? null);
      setRevision(serverRev);
      const local = labelSaver.draft(runId, seq);
      setRestored(Boolean(local));
      const src = local ?? p.label;
      setDraft(src ? { verdict: src.verdict, defectClass: src.defectClass ?? null, regions: src.regions ?? [] } : EMPTY);
    }, (e: ApiError) => { if (live) setError(`${e.code}: ${e.message}`); });
    return () => { live = false; };
  }, [runId, seq]);

  useEffect(() => labelSaver.onSaved((r, s, label) => {
    if (r !== runId || s !== seq) return;
    setRevision(label.revision);
    setRestored(false);
    // after a merge with another reviewer's revision, show what was saved (unless more edits are on their way)
    if (!labelSaver.hasPending(r, s)) {
      const now = draftRef.current;
      const saved: Draft = { verdict: label.verdict, defectClass: label.defectClass ?? null, regions: label.regions };
      if (JSON.stringify(now) !== JSON.stringify(saved)) setDraft(saved);
    }
  }), [runId, seq]);

  /** Apply an edit, record it for undo and save it. A class or a region implies a defect unless a verdict was chosen. */
  const update = (patch: Partial<Draft>): void => {
    const before = draftRef.current;
    const next: Draft = { ...before, ...patch };
    if (!next.verdict && (next.defectClass || next.regions.length)) next.verdict = 'true_defect';
    history.current.record(before, next);
    setHistoryTick((t) => t + 1);
    apply(next);
  };

  /** Show a label state and save it (an edit, an undo or a redo). */
  const apply = (next: Draft): void => {
    setDraft(next);
    if (!next.verdict) return;
    labelSaver.save(runId, seq, {
      verdict: next.verdict, regions: next.regions,
      ...(next.defectClass ? { defectClass: next.defectClass } : {}),
    }, part?.label?.revision ?? 0);
    if (!markedReviewed.current && part && !part.reviewed) {
      markedReviewed.current = true;
      api.markReviewed([{ runId, seq }], true).catch((e: ApiError) => { markedReviewed.current = false; setNote(`not marked reviewed: ${e.message}`); });
    }
  };

  const step = async (dir: 1 | -1): Promise<void> => {
    let order = queueOrder(back);
    if (!order) {
      try {
        const page = await api.parts(apiFilter(filterFromQuery(route.query)));
        rememberQueue(back, page.items);
        order = page.items.map((p) => [p.runId, p.seq]);
      } catch (e) { setNote(`could not load the queue: ${(e as ApiError).message}`); return; }
    }
    const i = order.findIndex(([r, s]) => r === runId && s === seq);
    const target = order[i + dir];
    if (!target) { setNote(dir > 0 ? 'end of the queue' : 'start of the queue'); return; }
    navigate(`/label/${encodeURIComponent(target[0])}/${target[1]}${back ? `?${back}` : ''}`);
  };

  const undo = (): void => {
    const r = history.current.undo(draftRef.current);
    if (!r) { setNote('nothing to undo'); return; }
    setHistoryTick((t) => t + 1);
    if (selectedId && !r.state.regions.some((x) => x.id === selectedId)) setSelectedId(null);
    apply(r.state);
    setNote(r.keptVerdict ? 'undone; the verdict stays (a saved label can be changed, not removed)' : 'undone');
  };
  const redo = (): void => {
    const next = history.current.redo(draftRef.current);
    if (!next) { setNote('nothing to redo'); return; }
    setHistoryTick((t) => t + 1);
    apply(next);
    setNote('redone');
  };

  /** The class a new region gets while the label has none; also what the picker shows. */
  const modelClass = part?.model.defectClass && classes.includes(part.model.defectClass) ? part.model.defectClass : null;
  const currentClass = draft.defectClass ?? picked ?? modelClass ?? classes[0] ?? null;
  const onRegions = (regions: Region[]): void => {
    const added = regions.length > draftRef.current.regions.length;
    update(added && !draftRef.current.defectClass && currentClass ? { regions, defectClass: currentClass } : { regions });
  };
  const pickClass = (c: string): void => {
    setPicked(c);
    // a label that already says what it is changes class; an empty one just remembers it for its first region
    if (draftRef.current.defectClass || draftRef.current.regions.length) update({ defectClass: c });
  };

  const accept = (): void => { if (part) update({ verdict: part.verdict === 'reject' ? 'true_defect' : 'false_reject' }); };
  const setClass = (i: number): void => { const c = classes[i]; if (c) update({ defectClass: draftRef.current.defectClass === c ? null : c }); };

  useKeys('Label', [
    { keys: ['j', 'ArrowRight', 'ArrowDown'], help: 'next part in the queue', run: () => void step(1) },
    { keys: ['k', 'ArrowLeft', 'ArrowUp'], help: 'previous part in the queue', run: () => void step(-1) },
    { keys: ['t'], help: 'verdict: true defect', run: () => update({ verdict: 'true_defect' }) },
    { keys: ['f'], help: 'verdict: false reject (for a pass: good)', run: () => update({ verdict: 'false_reject' }) },
    { keys: ['u'], help: 'verdict: unsure', run: () => update({ verdict: 'unsure' }) },
    { keys: ['a'], help: "accept the model's verdict", run: accept },
    { keys: ['1', '2', '3', '4', '5', '6', '7', '8', '9'], help: 'defect class by number (again: clear)', display: '1 … 9', run: (e) => setClass(Number(e.key) - 1) },
    { keys: ['b'], help: 'draw a box (drag)', run: () => setTool('box') },
    { keys: ['p'], help: 'draw a polygon (click points, Enter closes)', run: () => setTool('polygon') },
    { keys: ['v'], help: 'select / move / resize tool', run: () => setTool('select') },
    { keys: ['h'], help: 'heatmap on / off', run: () => setHeat((h) => !h) },
    { keys: ['r'], help: 'mark reviewed', run: () => void api.markReviewed([{ runId, seq }], true).then(() => setNote('marked reviewed'), (e: ApiError) => setNote(e.message)) },
    { keys: ['q'], help: 'back to the queue', run: () => navigate(`/review${back ? `?${back}` : ''}`) },
    { keys: ['ctrl+z'], help: 'undo the last edit (saved at once)', run: undo },
    { keys: ['ctrl+shift+Z', 'ctrl+y'], help: 'redo', run: redo },
  ]);

  if (error) return <div class="label-page"><p class="error">Could not load part {runId}/{seq}: {error}</p><a href={`#/review?${back}`}>back to the queue</a></div>;
  const colour = PALETTE[Math.max(0, classes.indexOf(draft.defectClass ?? currentClass ?? '')) % PALETTE.length]!;
  return (
    <div class="label-page">
      <div class="viewer-col">
        <div class="toolbar">
          <a href={`#/review?${back}`} title="back to the queue (q)">← queue</a>
          <span class="tools">
            {(['select', 'box', 'polygon'] as Tool[]).map((t) => (
              <button key={t} class={tool === t ? 'on' : ''} onClick={() => setTool(t)} title={t === 'select' ? 'v' : t[0]}>{t} <kbd>{t === 'select' ? 'v' : t[0]}</kbd></button>
            ))}
            <button class={heat ? 'on' : ''} onClick={() => setHeat(!heat)} data-testid="heatmap-toggle">heatmap <kbd>h</kbd></button>
            <button onClick={undo} disabled={!history.current.canUndo} title="undo (Ctrl+Z)" data-testid="undo">↶ undo</button>
            <button onClick={redo} disabled={!history.current.canRedo} title="redo (Ctrl+Shift+Z, Ctrl+Y)" data-testid="redo">↷ redo</button>
          </span>
          <label class="class-picker" title="the class of this label's regions; a new region on a label without a class gets it">
            class <select data-testid="current-class" value={currentClass ?? ''} disabled={!classes.length}
              onChange={(e) => pickClass(e.currentTarget.value)}>
              {classes.map((c, i) => <option key={c} value={c}>{i < 9 ? `${i + 1} ` : ''}{c}</option>)}
            </select>
            <span class="swatch" style={{ background: PALETTE[Math.max(0, classes.indexOf(currentClass ?? '')) % PALETTE.length] }} />
          </label>
          <span class="muted">wheel zoom · Space+drag pan · <kbd>0</kbd> fit · <kbd>Del</kbd> delete</span>
        </div>
        {imgs?.error ? <p class="error">{imgs.error}</p> : null}
        <ImageViewer image={imgs?.image ?? null} overlay={imgs?.overlay ?? null} showHeatmap={heat} peaks={imgs?.peaks ?? []}
          regions={draft.regions} selectedId={selectedId} tool={tool} colour={colour} classTag={draft.defectClass ?? (draft.regions.length ? 'no class' : null)}
          onSelect={setSelectedId} onChange={onRegions} onToolDone={() => setTool('select')} />
      </div>
      <aside class="label-side">
        {part ? <>
          <h2>Part #{part.seq} <VerdictBadge verdict={part.verdict} />{part.model.defectClass ? <span class="muted" data-testid="model-class"> model: {part.model.defectClass}</span> : null}</h2>
          <p class="muted">{new Date(part.capturedAtMs).toLocaleString()} · run {part.runId} · rev {revision}{restored ? ' · restored unsent edit' : ''}</p>
          <section>
            <h3>Verdict</h3>
            <div class="choices" data-testid="verdict-choices">
              {(['true_defect', 'false_reject', 'unsure'] as LabelVerdict[]).map((v) => (
                <button key={v} class={draft.verdict === v ? 'on' : ''} data-value={v} onClick={() => update({ verdict: v })}>
                  <kbd>{v === 'true_defect' ? 't' : v === 'false_reject' ? 'f' : 'u'}</kbd> {verdictText(v, part)}
                </button>
              ))}
              <button onClick={accept} title="accept the model's verdict"><kbd>a</kbd> accept model</button>
            </div>
          </section>
          <section>
            <h3>Defect class</h3>
            <div class="choices classes" data-testid="class-choices">
              {classes.length === 0 ? <span class="muted">the station has no class list</span> : null}
              {classes.map((c, i) => (
                <button key={c} class={draft.defectClass === c ? 'on' : ''} data-value={c} onClick={() => setClass(i)}>
                  {i < 9 ? <kbd>{i + 1}</kbd> : null} {c}
                </button>
              ))}
            </div>
          </section>
          <section>
            <h3>Regions ({draft.regions.length})</h3>
            <ul class="regions" data-testid="region-list">
              {draft.regions.map((r) => (
                <li key={r.id} class={r.id === selectedId ? 'on' : ''} onClick={() => setSelectedId(r.id)} data-kind={r.kind}>
                  <span>{r.kind === 'box' ? `box ${Math.round(r.w)}×${Math.round(r.h)} at ${Math.round(r.x)},${Math.round(r.y)}` : `polygon, ${r.points.length} points`}
                    {plane ? ((m) => <span class="mm" data-testid="region-mm">{fmtMm(m.widthMm)}×{fmtMm(m.heightMm)} mm, {fmtMm(m.areaMm2)} mm²</span>)(regionMm(plane, r)) : null}</span>
                  <button class="link" title="delete (Del)" onClick={(e) => { e.stopPropagation(); update({ regions: draft.regions.filter((x) => x.id !== r.id) }); }}>✕</button>
                </li>
              ))}
            </ul>
            {!draft.regions.length ? <p class="muted"><kbd>b</kbd> then drag for a box, <kbd>p</kbd> then clicks for a polygon.</p> : null}
          </section>
          <Explain part={part} peaks={imgs?.peaks ?? []} />
          {note ? <p class="flash">{note}</p> : null}
        </> : <p>Loading part…</p>}
      </aside>
    </div>
  );
}

/**
 * `#/label` with no part (the Label entry of the navigation bar): opens the first
 * part of the review queue (its filter from the URL; by default rejects and
 * near-threshold passes not yet reviewed by me).
 */
export function LabelNext({ route }: { route: Route }) {
  const [message, setMessage] = useState('Finding the next part to label…');
  const q = route.query.toString();
  useEffect(() => {
    let live = true;
    api.parts({ ...apiFilter(filterFromQuery(route.query)), limit: 1 }).then((page) => {
      if (!live) return;
      const p = page.items[0];
      if (p) navigate(`/label/${encodeURIComponent(p.runId)}/${p.seq}${q ? `?${q}` : ''}`, true);
      else setMessage('Nothing to label: the review queue (not reviewed by me) is empty.');
    }, (e: ApiError) => { if (live) setMessage(`Could not load the queue: ${e.code}: ${e.message}`); });
    return () => { live = false; };
  }, [q]);
  return <div class="label-page"><p data-testid="label-next">{message} <a href={`#/review${q ? `?${q}` : ''}`}>review queue</a></p></div>;
}
