/**
 * Review queue: rejects and passes near the threshold, filtered by time, verdict,
 * class, model version and reviewed state (per reviewer). Keyboard: j/k move,
 * x selects, r marks reviewed, f labels the selection as false rejects, Enter opens.
 * Two views (`v` toggles): the table, or a grid of thumbnails (the parts' saved
 * images through GET /api/parts/:runId/:seq/image, loaded lazily as they scroll in;
 * arrows move in the grid, ↑/↓ by a row). The time range is a quick range (last
 * 15 min … 7 d) or from … to; the server applies it on captured_at_ms.
 * The filter and the view live in the URL, so the label page can come back to the same queue.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, imageUrl, LABEL_NAMES, type Part, type PartFilter, type User } from '../api.js';
import { navigate, labelHref, type Route } from '../router.js';
import { useKeys } from '../components/keys.js';
import { ScoreBar, VerdictBadge } from '../components/StatusPill.js';
import { Thumb } from '../components/Thumb.js';
import { Explain } from '../components/Explain.js';
import { usePartImages } from '../components/part-images.js';
import { rememberQueue } from './queue-order.js';
import { ExportDialog } from '../components/ExportDialog.js';
import type { ExportFilter } from '../api.js';

const KINDS: Record<string, { label: string; f: Partial<PartFilter> }> = {
  queue: { label: 'rejects + near-threshold passes', f: {} },
  reject: { label: 'rejects', f: { verdict: 'reject' } },
  doubtful: { label: 'near-threshold passes', f: { doubtful: 'true' } },
};
const RANGES: Record<string, number | null> = { '15m': 15 * 60e3, '1h': 3600e3, '8h': 8 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3, all: null };

/** `range`: a preset ('8h', …, 'all') or 'custom' with `from`/`to` (epoch ms, '' = open). */
export interface QueueFilter { kind: string; range: string; from: string; to: string; cls: string; model: string; reviewed: string; view: 'table' | 'grid' }

export function filterFromQuery(q: URLSearchParams): QueueFilter {
  return {
    kind: q.get('kind') ?? 'queue', range: q.get('range') ?? 'all', from: q.get('from') ?? '', to: q.get('to') ?? '', cls: q.get('class') ?? '',
    model: q.get('model') ?? '', reviewed: q.get('reviewed') ?? 'false', view: q.get('view') === 'grid' ? 'grid' : 'table',
  };
}
export function filterQuery(f: QueueFilter): string {
  const custom: Record<string, string> = f.range === 'custom' ? { from: f.from, to: f.to } : {};
  const view: Record<string, string> = f.view === 'grid' ? { view: 'grid' } : {};
  return new URLSearchParams({ kind: f.kind, range: f.range, ...custom, class: f.cls, model: f.model, reviewed: f.reviewed, ...view }).toString();
}
export function apiFilter(f: QueueFilter, cursor: string | null = null): PartFilter {
  const span = RANGES[f.range] ?? null;
  const custom = f.range === 'custom';
  return {
    ...(KINDS[f.kind] ?? KINDS.queue!).f,
    from: custom ? (f.from ? Number(f.from) : undefined) : span ? Date.now() - span : undefined,
    to: custom && f.to ? Number(f.to) : undefined,
    class: f.cls || undefined, model: f.model || undefined,
    reviewed: (f.reviewed === 'true' || f.reviewed === 'false') ? f.reviewed : undefined,
    limit: 100, cursor,
  };
}
const key = (p: Part): string => `${p.runId}/${p.seq}`;
/** epoch ms (string) ↔ the value of an <input type=datetime-local> (local time, minutes) */
function toLocalInput(ms: string): string {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
const fromLocalInput = (v: string): string => (v ? String(new Date(v).getTime()) : '');

/** The export filter matching the queue filter (exports take labelled parts; the doubtful rule is the queue's own). */
function exportFilter(f: QueueFilter): ExportFilter {
  const q = apiFilter(f);
  const at = f.model.lastIndexOf('@');
  return {
    ...(q.from ? { from: q.from } : {}),
    ...(q.to ? { to: q.to } : {}),
    ...(f.kind === 'reject' ? { verdict: 'reject' as const } : f.kind === 'doubtful' ? { verdict: 'pass' as const } : {}),
    ...(f.cls ? { classes: [f.cls] } : {}),
    ...(at > 0 ? { modelName: f.model.slice(0, at), modelVersion: f.model.slice(at + 1) } : {}),
  };
}

export function ReviewPage({ route, classes, user }: { route: Route; classes: string[]; user: User }) {
  const filter = filterFromQuery(route.query);
  const fq = filterQuery(filter);
  const [items, setItems] = useState<Part[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [cursor, setCursor] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [loading, setLoading] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [models, setModels] = useState<string[]>([]);
  const [exporting, setExporting] = useState(false);
  const canExport = ['qa', 'ml', 'admin'].includes(user.role);

  const badRange = filter.range === 'custom' && filter.from !== '' && filter.to !== '' && Number(filter.from) >= Number(filter.to);
  const grid = filter.view === 'grid';
  const gridRef = useRef<HTMLDivElement>(null);
  /** thumbnails per grid row, as the browser laid them out (↑/↓ move by a row) */
  const columns = (): number => (grid && gridRef.current ? Math.max(1, getComputedStyle(gridRef.current).gridTemplateColumns.split(' ').length) : 1);
  const move = (by: number): void => setCursor((c) => Math.max(0, Math.min(items.length - 1, c + by)));

  const load = async (append: boolean): Promise<void> => {
    if (badRange) { setItems([]); setNext(null); setMessage('The time range is empty: “from” must be before “to”.'); return; }
    setLoading(true);
    try {
      const page = await api.parts(apiFilter(filter, append ? next : null));
      const fresh = page.items.map((p) => ({ ...p, threshold: p.threshold ?? page.threshold ?? null }));
      const list = append ? [...items, ...fresh] : fresh;
      setItems(list);
      setNext(page.nextCursor ?? null);
      rememberQueue(fq, list);
      setModels((m) => [...new Set([...m, ...page.items.map((p) => `${p.model.name}@${p.model.version}`)])].sort());
      if (!append) { setCursor((c) => Math.min(c, Math.max(0, list.length - 1))); setSelected(new Set()); }
      setMessage(null);
    } catch (e) {
      setMessage(`Could not load the queue: ${(e as ApiError).message}`);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => { void load(false); }, [fq]);

  const setFilter = (patch: Partial<QueueFilter>): void => navigate(`/review?${filterQuery({ ...filter, ...patch })}`, true);
  const current = items[cursor] ?? null;
  const targets = (): Part[] => (selected.size ? items.filter((p) => selected.has(key(p))) : current ? [current] : []);
  const ids = (ps: Part[]) => ps.map((p) => ({ runId: p.runId, seq: p.seq }));

  const act = async (what: string, run: () => Promise<unknown>, patch: (p: Part) => Part, ps: Part[]): Promise<void> => {
    if (!ps.length) return;
    const ks = new Set(ps.map(key));
    const before = items;
    setItems(items.map((p) => (ks.has(key(p)) ? patch(p) : p))); // optimistic; undone on failure
    try {
      await run();
      setMessage(`${what}: ${ps.length} part${ps.length > 1 ? 's' : ''}`);
      setSelected(new Set());
    } catch (e) {
      setItems(before);
      setMessage(`${what} failed: ${(e as ApiError).message}`);
    }
  };
  const markReviewed = (reviewed: boolean): void => {
    const ps = targets();
    void act(reviewed ? 'marked reviewed' : 'marked not reviewed', () => api.markReviewed(ids(ps), reviewed), (p) => ({ ...p, reviewed }), ps);
  };
  const labelFalseReject = (): void => {
    const ps = targets().filter((p) => p.verdict === 'reject');
    void act('labelled false reject', () => api.labelBulk(ids(ps), 'false_reject'),
      (p) => ({ ...p, reviewed: true, label: { verdict: 'false_reject', regions: [], revision: (p.label?.revision ?? 0) + 1 } }), ps);
  };
  const toggle = (p: Part | null): void => {
    if (!p) return;
    const s = new Set(selected);
    if (s.has(key(p))) s.delete(key(p)); else s.add(key(p));
    setSelected(s);
  };
  const open = (p: Part | null): void => { if (p) location.hash = labelHref(p.runId, p.seq, fq); };

  useKeys('Review queue', [
    { keys: ['j', 'ArrowDown'], help: 'next part (grid: ↓ one row down)', run: (e) => move(e.key === 'ArrowDown' ? columns() : 1) },
    { keys: ['k', 'ArrowUp'], help: 'previous part (grid: ↑ one row up)', run: (e) => move(e.key === 'ArrowUp' ? -columns() : -1) },
    { keys: ['ArrowRight'], help: 'grid: next part', run: () => move(1), when: () => grid },
    { keys: ['ArrowLeft'], help: 'grid: previous part', run: () => move(-1), when: () => grid },
    { keys: ['v'], help: 'table / thumbnail grid', run: () => setFilter({ view: grid ? 'table' : 'grid' }) },
    { keys: ['x', ' '], help: 'select / unselect the part', run: () => { toggle(current); setCursor((c) => Math.min(items.length - 1, c + 1)); } },
    { keys: ['*'], help: 'select all shown / none', run: () => setSelected(selected.size ? new Set() : new Set(items.map(key))) },
    { keys: ['r'], help: 'mark selected (or current) reviewed', run: () => markReviewed(true) },
    { keys: ['shift+U'], help: 'mark selected (or current) not reviewed', run: () => markReviewed(false) },
    { keys: ['f'], help: 'label selected (or current) rejects as false rejects', run: labelFalseReject },
    { keys: ['Enter', 'o'], help: 'open the part to label it', run: () => open(current) },
    { keys: ['n'], help: 'load more', run: () => { if (next) void load(true); } },
    { keys: ['g'], help: 'reload the queue', run: () => void load(false) },
    { keys: ['e'], help: 'export the labelled parts of this filter (COCO, YOLO, MVTec)', run: () => setExporting(true), when: () => canExport && !exporting },
  ]);

  useEffect(() => { document.querySelector('.queue tr.cursor, .thumb-grid .cursor')?.scrollIntoView({ block: 'nearest' }); }, [cursor, grid]);
  const imgs = usePartImages(current);
  const reviewedCount = useMemo(() => items.filter((p) => p.reviewed).length, [items]);

  return (
    <div class="review">
      {exporting ? <ExportDialog filter={exportFilter(filter)} onClose={() => setExporting(false)}
        describe={`${KINDS[filter.kind]?.label ?? filter.kind}, ${filter.range === 'all' ? 'any time' : filter.range === 'custom' ? `${toLocalInput(filter.from) || '…'} to ${toLocalInput(filter.to) || 'now'}` : `last ${filter.range}`}${filter.cls ? `, class ${filter.cls}` : ''}${filter.model ? `, model ${filter.model}` : ''}`} /> : null}
      <div class="filters" role="search">
        <select aria-label="kind" value={filter.kind} onChange={(e) => setFilter({ kind: e.currentTarget.value })}>
          {Object.entries(KINDS).map(([k, v]) => <option key={k} value={k}>{v.label}</option>)}
        </select>
        <select aria-label="time range" value={filter.range} onChange={(e) => setFilter({ range: e.currentTarget.value })}>
          {Object.keys(RANGES).map((k) => <option key={k} value={k}>{k === 'all' ? 'any time' : `last ${k}`}</option>)}
          <option value="custom">from … to …</option>
        </select>
        {filter.range === 'custom' ? <>
          <input type="datetime-local" aria-label="from" value={toLocalInput(filter.from)} onChange={(e) => setFilter({ from: fromLocalInput(e.currentTarget.value) })} />
          <input type="datetime-local" aria-label="to" value={toLocalInput(filter.to)} onChange={(e) => setFilter({ to: fromLocalInput(e.currentTarget.value) })} />
        </> : null}
        <select aria-label="class" title="the QA label's class or the model's class" value={filter.cls} onChange={(e) => setFilter({ cls: e.currentTarget.value })}>
          <option value="">any class</option>
          {classes.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
        <select aria-label="model version" value={filter.model} onChange={(e) => setFilter({ model: e.currentTarget.value })}>
          <option value="">any model</option>
          {[...new Set([...models, filter.model].filter(Boolean))].map((m) => <option key={m} value={m}>{m}</option>)}
        </select>
        <select aria-label="reviewed" value={filter.reviewed} onChange={(e) => setFilter({ reviewed: e.currentTarget.value })}>
          <option value="false">not reviewed by me</option>
          <option value="true">reviewed by me</option>
          <option value="">reviewed or not</option>
        </select>
        <span class="muted">{items.length}{next ? '+' : ''} parts · {reviewedCount} reviewed · {selected.size} selected{loading ? ' · loading…' : ''}</span>
        <span class="view-toggle" role="group" aria-label="view">
          <button class={grid ? '' : 'on'} onClick={() => setFilter({ view: 'table' })} data-testid="view-table">table</button>
          <button class={grid ? 'on' : ''} onClick={() => setFilter({ view: 'grid' })} data-testid="view-grid">grid <kbd>v</kbd></button>
        </span>
        {canExport ? <button onClick={() => setExporting(true)} data-testid="export-open">export <kbd>e</kbd></button> : null}
        {message ? <span class="flash" data-testid="review-message">{message}</span> : null}
      </div>
      <div class="review-body">
        <div class="queue-wrap">
          {grid ? <div class="thumb-grid" ref={gridRef} data-testid="queue-grid">
            {items.map((p, i) => (
              <figure key={key(p)} class={`tile ${i === cursor ? 'cursor' : ''} ${selected.has(key(p)) ? 'selected' : ''} ${p.verdict}`}
                onClick={() => setCursor(i)} onDblClick={() => open(p)} data-testid="grid-item" data-seq={p.seq} data-verdict={p.verdict}>
                {p.hasImage ? <img src={imageUrl(p)} loading="lazy" decoding="async" alt={`part ${p.seq}`} /> : <div class="no-image">no image saved</div>}
                <figcaption>
                  <span>#{p.seq} <VerdictBadge verdict={p.verdict} /></span>
                  <span class="muted">{new Date(p.capturedAtMs).toLocaleTimeString()}</span>
                  <span>{p.label ? `${LABEL_NAMES[p.label.verdict]}${p.label.defectClass ? ` · ${p.label.defectClass}` : ''}` : p.model.defectClass ? <span class="muted">model: {p.model.defectClass}</span> : ''}{p.reviewed ? ' ✓' : ''}</span>
                </figcaption>
              </figure>
            ))}
          </div> : <table class="queue" data-testid="queue">
            <thead><tr><th></th><th>time</th><th>part</th><th>verdict</th><th>score / threshold</th><th>code</th><th>label</th><th>model</th><th>reviewed</th></tr></thead>
            <tbody>
              {items.map((p, i) => (
                <tr key={key(p)} class={`${i === cursor ? 'cursor' : ''} ${selected.has(key(p)) ? 'selected' : ''}`}
                  onClick={() => setCursor(i)} onDblClick={() => open(p)} data-testid="queue-row" data-seq={p.seq} data-verdict={p.verdict}>
                  <td><input type="checkbox" tabIndex={-1} checked={selected.has(key(p))} onClick={(e) => { e.stopPropagation(); toggle(p); }} /></td>
                  <td>{new Date(p.capturedAtMs).toLocaleTimeString()}</td>
                  <td><a href={labelHref(p.runId, p.seq, fq)}>#{p.seq}</a></td>
                  <td><VerdictBadge verdict={p.verdict} />{p.model.defectClass ? <span class="muted" data-testid="model-class"> model: {p.model.defectClass}</span> : null}</td>
                  <td><ScoreBar score={p.score} threshold={p.threshold} /></td>
                  <td>{p.code}</td>
                  <td>{p.label ? `${LABEL_NAMES[p.label.verdict]}${p.label.defectClass ? ` · ${p.label.defectClass}` : ''}` : <span class="muted">–</span>}</td>
                  <td>{p.model.name}@{p.model.version}</td>
                  <td>{p.reviewed ? '✓' : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>}
          {!items.length && !loading ? <p class="empty">Nothing in this queue. Change the filter, or wait for parts.</p> : null}
          {next ? <button onClick={() => void load(true)}>load more (<kbd>n</kbd>)</button> : null}
        </div>
        <aside class="preview">
          {current ? <>
            <Thumb part={current} width={320} />
            <Explain part={current} peaks={imgs?.peaks ?? []} />
            <p class="muted"><kbd>Enter</kbd> label · <kbd>x</kbd> select · <kbd>r</kbd> reviewed · <kbd>f</kbd> false reject · <kbd>?</kbd> all keys</p>
          </> : <p class="muted">No part selected.</p>}
        </aside>
      </div>
    </div>
  );
}
