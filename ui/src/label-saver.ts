/**
 * Saves labels so that nothing is ever lost:
 *  - every edit is written to localStorage first (synchronously), then sent with
 *    `PUT /api/parts/:runId/:seq/label` carrying the revision it was based on;
 *  - one request per part at a time; edits made meanwhile are coalesced and sent
 *    next, on the revision the server just returned;
 *  - no answer / 5xx: kept, retried with backoff (1 s … 15 s) and on `online`;
 *  - 409 (someone saved in between): the server's label is fetched and the edit is
 *    merged onto it three-way against the label the edit was based on (verdict and
 *    class: what this user changed wins, the rest is theirs; regions by id: this
 *    user's additions, changes and deletions applied to theirs), then re-sent on the
 *    new revision (the server keeps every revision in the history);
 *  - other 4xx: the edit stays in localStorage and the status says why.
 * A reload or a crash leaves the unsent edits in localStorage; `resume()` sends them.
 */
import { api, ApiError, type Label, type LabelPut } from './api.js';
import { mergeLabel, type LabelContent } from './label-merge.js';

export type SaveState = 'saved' | 'saving' | 'offline' | 'error';
export interface SaverStatus { state: SaveState; pending: number; message: string }

const PREFIX = 'inspector.label.';
const key = (runId: string, seq: number): string => `${runId}/${seq}`;

/** An unsent edit and the server content it was based on (null: no label yet). */
interface Draft { runId: string; seq: number; body: LabelPut; base: LabelContent | null; editedAtMs: number }

const content = (l: LabelContent): LabelContent => ({ verdict: l.verdict, defectClass: l.defectClass ?? null, regions: l.regions });

export class LabelSaver {
  private readonly inFlight = new Set<string>();
  private readonly waiting = new Map<string, Draft>();
  private readonly revisions = new Map<string, number>();
  /** the server content each part's known revision holds */
  private readonly bases = new Map<string, LabelContent | null>();
  private readonly listeners = new Set<(s: SaverStatus) => void>();
  private readonly savedListeners = new Set<(runId: string, seq: number, label: Label) => void>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private backoffMs = 1000;
  status: SaverStatus = { state: 'saved', pending: 0, message: '' };

  constructor(private readonly storage: Storage = localStorage) {
    addEventListener('online', () => this.retryNow());
  }

  /** The unsent local edit for a part, if any (survives reloads). */
  draft(runId: string, seq: number): LabelPut | null {
    const raw = this.storage.getItem(PREFIX + key(runId, seq));
    if (!raw) return null;
    try { return (JSON.parse(raw) as Draft).body; } catch { return null; }
  }

  /** What the server holds now for a part (its label and revision), as the page loaded it. */
  setServerLabel(runId: string, seq: number, label: Label | null): void {
    const k = key(runId, seq);
    const rev = label?.revision ?? 0;
    if ((this.revisions.get(k) ?? -1) > rev) return; // this page already saved something newer
    this.revisions.set(k, rev);
    this.bases.set(k, label ? content(label) : null);
  }

  /** Whether an edit of this part is still waiting or in flight. */
  hasPending(runId: string, seq: number): boolean {
    const k = key(runId, seq);
    return this.waiting.has(k) || this.inFlight.has(k);
  }

  /** Record an edit: kept locally at once, sent as soon as possible. */
  save(runId: string, seq: number, body: Omit<LabelPut, 'revision'>, baseRevision: number): void {
    const k = key(runId, seq);
    const earlier = this.waiting.get(k);
    const draft: Draft = {
      runId, seq, body: { ...body, revision: this.revisions.get(k) ?? baseRevision },
      // coalesced edits keep the base of the first unsent one
      base: earlier ? earlier.base : (this.bases.get(k) ?? null), editedAtMs: Date.now(),
    };
    this.storage.setItem(PREFIX + k, JSON.stringify(draft));
    this.waiting.set(k, draft);
    this.pump(k);
  }

  /** Send every edit left in localStorage by an earlier page (reload, crash, offline). */
  resume(): void {
    for (let i = 0; i < this.storage.length; i++) {
      const name = this.storage.key(i);
      if (!name?.startsWith(PREFIX)) continue;
      try {
        const d = JSON.parse(this.storage.getItem(name) ?? '') as Draft;
        const k = key(d.runId, d.seq);
        if (!this.waiting.has(k) && !this.inFlight.has(k)) this.waiting.set(k, d);
      } catch { this.storage.removeItem(name); }
    }
    for (const k of [...this.waiting.keys()]) this.pump(k);
    this.publish();
  }

  /** Resolves once nothing is waiting or in flight (or after `timeoutMs`). */
  async idle(timeoutMs = 10_000): Promise<boolean> {
    const t0 = Date.now();
    while (this.pendingCount() > 0 && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 50));
    return this.pendingCount() === 0;
  }

  onStatus(fn: (s: SaverStatus) => void): () => void {
    this.listeners.add(fn);
    fn(this.status);
    return () => this.listeners.delete(fn);
  }

  onSaved(fn: (runId: string, seq: number, label: Label) => void): () => void {
    this.savedListeners.add(fn);
    return () => this.savedListeners.delete(fn);
  }

  private pendingCount(): number {
    return new Set([...this.waiting.keys(), ...this.inFlight]).size;
  }

  private retryNow(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const k of [...this.waiting.keys()]) this.pump(k);
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 15_000);
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.retryNow(); }, delay);
  }

  private pump(k: string): void {
    if (this.inFlight.has(k)) { this.publish(); return; }
    const d = this.waiting.get(k);
    if (!d) { this.publish(); return; }
    this.waiting.delete(k);
    this.inFlight.add(k);
    this.publish();
    const body: LabelPut = { ...d.body, revision: this.revisions.get(k) ?? d.body.revision };
    api.putLabel(d.runId, d.seq, body).then((label) => {
      this.inFlight.delete(k);
      this.backoffMs = 1000;
      const rev = typeof label?.revision === 'number' ? label.revision : body.revision + 1;
      this.revisions.set(k, rev);
      this.bases.set(k, content(label ?? body));
      const next = this.waiting.get(k);
      if (next) next.base = content(label ?? body); // the next edit now builds on what was just saved
      // only forget the local copy if no newer edit arrived while this one was in flight
      if (!this.waiting.has(k)) this.storage.removeItem(PREFIX + k);
      for (const fn of this.savedListeners) fn(d.runId, d.seq, { ...body, ...label, revision: rev });
      this.setStatus(this.pendingCount() ? 'saving' : 'saved', '');
      this.pump(k);
    }, async (err: ApiError) => {
      this.inFlight.delete(k);
      if (!this.waiting.has(k)) this.waiting.set(k, d);
      if (err.status === 409) {
        // saved by someone else (or by us, answer lost): merge onto the server's label and send again
        try {
          const part = await api.part(d.runId, d.seq);
          const theirs = part.label ? content(part.label) : null;
          const w = this.waiting.get(k)!;
          const merged = mergeLabel(w.base, content(w.body), theirs);
          const body2: LabelPut = { ...merged, defectClass: merged.defectClass ?? undefined, revision: part.label?.revision ?? 0 };
          if (body2.defectClass === undefined) delete body2.defectClass;
          const rebased: Draft = { ...w, body: body2, base: theirs };
          this.waiting.set(k, rebased);
          this.storage.setItem(PREFIX + k, JSON.stringify(rebased));
          this.revisions.set(k, part.label?.revision ?? 0);
          this.bases.set(k, theirs);
          this.setStatus('saving', `merged with ${part.label?.by ?? 'another'} reviewer's revision ${part.label?.revision ?? 0}`);
          this.pump(k);
        } catch {
          this.setStatus('offline', 'could not fetch the newer revision; will retry');
          this.scheduleRetry();
        }
        return;
      }
      if (err.offline || err.status >= 500 || err.status === 401 || err.status === 408 || err.status === 429) {
        this.setStatus('offline', err.status === 401 ? 'logged out: log in again to send' : err.message);
        this.scheduleRetry();
        return;
      }
      // a 4xx the server will not change its mind about: keep the edit, say why, do not loop
      this.waiting.delete(k);
      this.setStatus('error', `${err.code}: ${err.message} (kept locally)`);
    });
  }

  private setStatus(state: SaveState, message: string): void {
    this.status = { state, pending: this.pendingCount(), message };
    for (const fn of this.listeners) fn(this.status);
  }

  private publish(): void {
    const pending = this.pendingCount();
    const state: SaveState = this.status.state === 'offline' || this.status.state === 'error'
      ? this.status.state : pending > 0 ? 'saving' : 'saved';
    this.setStatus(state, this.status.message);
  }
}

export const labelSaver = new LabelSaver();
