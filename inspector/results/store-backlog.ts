/**
 * The write batching and the query queue under ResultStore (result-store.ts extends StoreBacklog):
 * operations wait in a buffer, are sealed into a batch every `batchMs` (or at `maxBatch`), posted
 * to the store worker and kept until their commit is acknowledged; queries are held the same way
 * until answered. After a respawn both are replayed in their original order (replayUnanswered).
 * Kept apart so that result-store.ts reads as the store's API and its worker's lifecycle, without
 * this bookkeeping. A base class rather than a helper object: add() reaches its buffer as a field
 * of the store itself, with no extra hop per part.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger.js';
import type { SupervisedWorker } from '../core/supervised-worker.js';
import type { ResultStoreStats } from './result-store-types.js';
// Type-only: importing store-worker.ts for values would run the worker here.
import type { FromStoreWorker, QuerySpec, StoreOp, ToStoreWorker } from './store-worker.js';

interface Batch { id: number; ops: StoreOp[]; attempts: number }
interface PendingQuery { id: number; q: QuerySpec; resolve: (v: unknown) => void; reject: (e: Error) => void }

export type Ready = Extract<FromStoreWorker, { type: 'ready' }>;

export abstract class StoreBacklog extends EventEmitter {
  readonly stats: ResultStoreStats = {
    added: 0, updates: 0, gateOutcomes: 0, inserted: 0, duplicates: 0, updated: 0, deferred: 0, quarantined: 0,
    outcomes: 0, outcomesKept: 0, batchesCommitted: 0, restarts: 0, backlog: 0, workerUp: false,
  };
  /** the current worker is ready and has had the unacknowledged batches posted */
  protected ready = false;
  private buffer: StoreOp[] = [];
  private timer: NodeJS.Timeout | null = null;
  protected readonly unacked: Batch[] = [];
  private readonly queries = new Map<number, PendingQuery>();
  private flushWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  private lastBatchId = 0;
  private lastQueryId = 0;
  private backlogWarnAt = 4096;
  /** close() was called: no new operations */
  protected closeRequested = false;
  protected closed = false;

  protected constructor(
    protected readonly log: Logger,
    private readonly batchMs: number,
    private readonly maxBatch: number,
    protected readonly sw: SupervisedWorker<Ready>,
  ) {
    super();
  }

  /** Resolves once every operation queued so far is committed (waits through worker restarts). */
  flush(): Promise<void> {
    this.seal();
    if (this.unacked.length === 0) return Promise.resolve();
    const upTo = this.lastBatchId;
    return new Promise((resolve) => this.flushWaiters.push({ upTo, resolve }));
  }

  protected enqueue(op: StoreOp): void {
    if (this.closeRequested || this.closed) throw new Error('ResultStore is closed');
    this.buffer.push(op);
    this.stats.backlog++;
    if (this.buffer.length >= this.maxBatch) this.seal();
    else this.timer ??= setTimeout(() => this.seal(), this.batchMs);
  }

  /** Turn the buffer into a batch and post it (if the worker is up). */
  private seal(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.buffer.length === 0) return;
    const batch: Batch = { id: ++this.lastBatchId, ops: this.buffer, attempts: 0 };
    this.buffer = [];
    this.unacked.push(batch);
    if (this.ready) this.postBatch(batch);
    if (this.stats.backlog >= this.backlogWarnAt) {
      this.log.error({ backlog: this.stats.backlog, batches: this.unacked.length, workerUp: this.ready },
        'result backlog is growing: results are held in memory until the store worker commits them');
      this.backlogWarnAt *= 2;
    }
  }

  private postBatch(b: Batch): void {
    b.attempts++;
    this.sw.post({ type: 'batch', id: b.id, ops: b.ops, replay: b.attempts > 1 } satisfies ToStoreWorker);
  }

  protected ask(q: QuerySpec): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('ResultStore is closed'));
    this.seal(); // read-your-writes: the query runs after everything queued so far
    return new Promise((resolve, reject) => {
      const pq: PendingQuery = { id: ++this.lastQueryId, q, resolve, reject };
      this.queries.set(pq.id, pq);
      if (this.ready) this.postQuery(pq);
    });
  }

  private postQuery(pq: PendingQuery): void {
    this.sw.post({ type: 'query', id: pq.id, q: pq.q } satisfies ToStoreWorker);
  }

  /** A (re)started worker is ready: post every unacknowledged batch in order, then the unanswered queries. Returns the batches. */
  protected replayUnanswered(): number {
    const replayed = this.unacked.length;
    for (const b of this.unacked) this.postBatch(b);
    for (const pq of this.queries.values()) this.postQuery(pq);
    return replayed;
  }

  /** The worker's 'committed': the batch leaves memory, its counts are added, flush() waiters up to it resolve. */
  protected onCommitted(m: Extract<FromStoreWorker, { type: 'committed' }>): void {
    const i = this.unacked.findIndex((b) => b.id === m.id);
    if (i < 0) return;
    const [b] = this.unacked.splice(i, 1);
    this.stats.backlog -= b!.ops.length;
    this.stats.batchesCommitted++;
    this.stats.inserted += m.inserted;
    this.stats.duplicates += m.duplicates;
    this.stats.updated += m.updated;
    this.stats.deferred += m.deferred;
    this.stats.quarantined += m.quarantined;
    this.stats.outcomes += m.outcomes;
    this.stats.outcomesKept += m.outcomesKept;
    if (this.stats.backlog < 1024) this.backlogWarnAt = 4096;
    const oldest = this.unacked[0]?.id ?? Infinity;
    const done = this.flushWaiters.filter((f) => f.upTo < oldest);
    this.flushWaiters = this.flushWaiters.filter((f) => f.upTo >= oldest);
    for (const f of done) f.resolve();
  }

  /** The worker's answer to a query. */
  protected onAnswer(m: Extract<FromStoreWorker, { type: 'result' }>): void {
    const pq = this.queries.get(m.id);
    if (!pq) return;
    this.queries.delete(m.id);
    if (m.ok) pq.resolve(m.value); else pq.reject(new Error(m.error));
  }
}
