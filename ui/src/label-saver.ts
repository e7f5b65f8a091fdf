/**
 * Saves labels so that nothing is ever lost:
 *  - every edit is written to localStorage first (synchronously), then sent with
 *    `PUT /api/parts/:runId/:seq/label` carrying the revision it was based on;
 *  - one request per part at a time; edits made meanwhile are coalesced and sent
 *    next, on the revision the server just returned;
 *  - no answer / 5xx: kept, retried with backoff (1 s … 15 s) and on `online`;
 *  - 409 (someone saved in between): the server's revision is fetched and the
 *    edit is re-sent on top of it (the server keeps every revision in the history);
 *  - other 4xx: the edit stays in localStorage and the status says why.
 * A reload or a crash leaves the unsent edits in localStorage; `resume()` sends them.
 */
import { api, ApiError, type Label, type LabelPut } from './api.js';

export type SaveState = 'saved' | 'saving' | 'offline' | 'error';
export interface SaverStatus { state: SaveState; pending: number; message: string }

const PREFIX = 'inspector.label.';
const key = (runId: string, seq: number): string => `${runId}/${seq}`;

interface Draft { runId: string; seq: number; body: LabelPut; editedAtMs: number }

export class LabelSaver {
  private readonly inFlight = new Set<string>();
  private readonly waiting = new Map<string, Draft>();
  private readonly revisions = new Map<string, number>();
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

  /** The revision the next save of this part must carry. */
  revision(runId: string, seq: number, fallback: number): number {
    return this.revisions.get(key(runId, seq)) ?? fallback;
  }

  setRevision(runId: string, seq: number, revision: number): void {
    this.revisions.set(key(runId, seq), revision);
  }

  /** Record an edit: kept locally at once, sent as soon as possible. */
  save(runId: string, seq: number, body: Omit<LabelPut, 'revision'>, baseRevision: number): void {
    const k = key(runId, seq);
    const draft: Draft = { runId, seq, body: { ...body, revision: this.revisions.get(k) ?? baseRevision }, editedAtMs: Date.now() };
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
      // only forget the local copy if no newer edit arrived while this one was in flight
      if (!this.waiting.has(k)) this.storage.removeItem(PREFIX + k);
      for (const fn of this.savedListeners) fn(d.runId, d.seq, { ...body, ...label, revision: rev });
      this.setStatus(this.pendingCount() ? 'saving' : 'saved', '');
      this.pump(k);
    }, async (err: ApiError) => {
      this.inFlight.delete(k);
      if (!this.waiting.has(k)) this.waiting.set(k, d);
      if (err.status === 409) {
        // saved by someone else (or by us, answer lost): rebase on the server's revision and send again
        try {
          const part = await api.part(d.runId, d.seq);
          this.revisions.set(k, part.label?.revision ?? 0);
          this.setStatus('saving', 'rebased on a newer revision');
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
