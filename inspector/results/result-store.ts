/**
 * ResultStore: the main-thread face of the SQLite result store.
 *
 * Nothing here touches SQLite. `add()` and `update()` append a small plain
 * operation to an array (microseconds); the array is sealed into a batch
 * every `batchMs` (or at `maxBatch` operations) and posted to the store
 * worker, which commits each batch in one transaction and acknowledges it.
 *
 * Never drops: a batch stays in memory until its commit is acknowledged. If
 * the worker dies, everything unacknowledged (and everything added since) is
 * kept, the worker is respawned with exponential backoff (core/supervised-worker.ts),
 * and the batches are replayed in their original order, then the queries still
 * unanswered; inserts are idempotent on (run_id, seq) and (line_epoch, part_id),
 * so a batch that committed but whose acknowledgement was lost adds nothing
 * (counted in stats.duplicates). Memory is the only bound; the backlog is logged
 * at every doubling. Each death: 'worker-death' ({ worker: 'store', reason,
 * generation, deaths }); each respawn ready: 'worker-ready'; counters:
 * `supervision` (and stats.restarts, the deaths followed by a restart).
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../core/logger.js';
import type { GateOutcome, PartReason, ResultRecord, Verdict } from '../core/types.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import { relayWorkerEvents, supervisionOf, type WorkerSupervision } from '../core/worker-events.js';
// Type-only: importing store-worker.ts for values would run the worker here.
import type {
  BatchCounts, FromStoreWorker, GateTuple, PartAccounting, QuerySpec, RowTuple, ShadowReportRows, ShadowTuple, StoreOp,
  StoreWorkerData, ToStoreWorker,
} from './store-worker.js';

export type { PartAccounting } from './store-worker.js';

export type StoreRecord = ResultRecord & { runId: string };

/** Facts that arrive after the verdict. Only the fields present are written. */
/**
 * The gate's outcome of a PLC-numbered part, read back from the PLC (`ResultStore.setGateOutcome`).
 * `fill` is used only when the part has no row yet (the station never saw it): the row made for it takes
 * run_id / seq / captured_at_ms from there, so `fill.seq` must be a seq no record of `fill.runId` uses.
 */
export interface GateOutcomeFact {
  lineEpoch: number;
  partId: number;
  outcome: GateOutcome;
  /** when the outcome was read (Date.now()) */
  atMs: number;
  fill: { runId: string; seq: number; capturedAtMs: number };
}

export interface ResultPatch {
  plcWriteMs?: number | null;
  plcStatus?: ResultRecord['plcStatus'];
  imagePath?: string | null;
  anomalyMapPath?: string | null;
}

/** A stored row, as SQLite returns it (column names). */
export interface ResultRow {
  id: number; seq: number; captured_at_ms: number; verdict: Verdict; code: number; score: number | null;
  model_name: string; model_version: string; provider: string;
  dispatch_ms: number | null; inference_ms: number | null; frame_to_verdict_ms: number | null;
  /** 'none': a row made by a gate outcome for a part the station never saw (no PLC write of its own) */
  plc_write_ms: number | null; plc_status: ResultRecord['plcStatus'] | 'none'; source_ref: string | null;
  image_path: string | null; anomaly_map_path: string | null; run_id: string;
  /** the model's defect class of the verdict (schema v3; NULL on passes, errors and rows stored before v3) */
  defect_class: string | null;
  /** line truth (schema v4; NULL on rows stored before v4 or by a writer without it): the PLC's numbering epoch and part id */
  line_epoch: number | null;
  part_id: number | null;
  /** why the part has no model verdict (NULL: inspected) */
  reason: PartReason | null;
  /** what the gate did, read back from the PLC (NULL: not read back yet), and when it was read */
  gate_outcome: GateOutcome | null;
  gate_outcome_at_ms: number | null;
}

export interface ResultStoreOptions {
  dbPath: string;
  logger: Logger;
  /** Longest time an operation waits on the main thread before it is posted (default 50). */
  batchMs?: number;
  /** Post at once when this many operations are waiting (default 256). */
  maxBatch?: number;
  /** Restart backoff after a worker death: first and largest delay in ms (default 100 / 5000). */
  restartBackoffMs?: { initial: number; max: number };
  /**
   * @internal test hooks: `dieAfterCommitOfBatch` applies to the first worker only;
   * `kill` allows debugKill().
   */
  testHooks?: { dieAfterCommitOfBatch?: number; kill?: boolean };
}

export interface ResultStoreStats extends BatchCounts {
  added: number;
  updates: number;
  /** setGateOutcome() calls */
  gateOutcomes: number;
  batchesCommitted: number;
  restarts: number;
  /** operations added or updated but not yet acknowledged as committed */
  backlog: number;
  workerUp: boolean;
}

interface Batch { id: number; ops: StoreOp[]; attempts: number }
interface PendingQuery { id: number; q: QuerySpec; resolve: (v: unknown) => void; reject: (e: Error) => void }

const WORKER_URL = new URL('./store-worker.ts', import.meta.url);
/** Bits of an update's mask (must match the CASE WHEN tests in store-worker.ts). */
const PatchBit = { plcWriteMs: 1, plcStatus: 2, imagePath: 4, anomalyMapPath: 8 } as const;

type Ready = Extract<FromStoreWorker, { type: 'ready' }>;

export class ResultStore extends EventEmitter {
  readonly stats: ResultStoreStats = {
    added: 0, updates: 0, gateOutcomes: 0, inserted: 0, duplicates: 0, updated: 0, deferred: 0, quarantined: 0,
    outcomes: 0, outcomesKept: 0, batchesCommitted: 0, restarts: 0, backlog: 0, workerUp: false,
  };
  private readonly log: Logger;
  private readonly batchMs: number;
  private readonly maxBatch: number;
  private readonly sw: SupervisedWorker<Ready>;
  /** the current worker is ready and has had the unacknowledged batches posted */
  private ready = false;
  private buffer: StoreOp[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly unacked: Batch[] = [];
  private readonly queries = new Map<number, PendingQuery>();
  private flushWaiters: Array<{ upTo: number; resolve: () => void }> = [];
  private lastBatchId = 0;
  private lastQueryId = 0;
  private backlogWarnAt = 4096;
  /** close() was called: no new operations */
  private closeRequested = false;
  /** the final flush is done: a worker exit is no longer a death */
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | null = null;

  private constructor(private readonly opts: ResultStoreOptions) {
    super();
    this.log = opts.logger.child({ mod: 'result-store' });
    this.batchMs = opts.batchMs ?? 50;
    this.maxBatch = opts.maxBatch ?? 256;
    const backoff = opts.restartBackoffMs ?? { initial: 100, max: 5000 };
    const { kill: _kill, ...hooks } = opts.testHooks ?? {};
    void _kill;
    this.sw = new SupervisedWorker<Ready>({
      name: 'result-store', url: WORKER_URL,
      workerData: (start): StoreWorkerData => ({ dbPath: opts.dbPath, ...(start === 0 ? hooks : {}) }),
      startFailure: (reason) => new Error(`store worker for ${opts.dbPath} failed to start: ${reason}`),
      backoff: { initialMs: backoff.initial, maxMs: backoff.max },
    });
    this.sw.on('message', (m: FromStoreWorker) => this.onMessage(m));
    this.sw.on('ready', (m: Ready, info: { restart: boolean }) => this.onReady(m, info.restart));
    this.sw.on('death', (d: { reason: string }) => this.onDeath(d.reason));
    relayWorkerEvents(this.sw, 'store', this.log, (event, payload) => this.emit(event, payload));
  }

  /** Open (create, migrate) the database in a fresh store worker. Rejects if the first worker cannot start. */
  static async open(opts: ResultStoreOptions): Promise<ResultStore> {
    const store = new ResultStore(opts);
    try {
      await store.sw.start();
    } catch (err) {
      store.closed = true;
      throw err;
    }
    return store;
  }

  /** Deaths and respawns of the store worker. */
  get supervision(): WorkerSupervision { return supervisionOf('store', this.sw); }

  /** Record the start of a run and its configuration (stored in `runs`). */
  startRun(runId: string, config: unknown): void {
    this.enqueue({ k: 'run', runId, startedAtMs: Date.now(), configJson: JSON.stringify(config ?? null) });
  }

  /**
   * Queue a result for storage. Never blocks, never drops; the record is copied.
   * With a `partId` (and its `lineEpoch`) the part has one row: if its gate outcome came first (a row made
   * by setGateOutcome), the record fills that row and the outcome is kept.
   */
  add(r: StoreRecord): void {
    if (this.closeRequested || this.closed) throw new Error('ResultStore is closed');
    const t = r.timings;
    const row: RowTuple = [
      r.runId, r.seq, r.capturedAtMs, r.verdict, r.code, r.score, r.modelName, r.modelVersion, r.provider,
      t.dispatchMs, t.inferenceMs, t.frameToVerdictMs, t.plcWriteMs, r.plcStatus, r.sourceRef,
      r.imagePath, r.anomalyMapPath, r.defectClass ?? null, r.lineEpoch ?? null, r.partId ?? null, r.reason ?? null,
    ];
    this.stats.added++;
    this.enqueue({ k: 'ins', row });
  }

  /**
   * Queue the gate's outcome of a part, read back from the PLC. Never blocks, never drops; batched with the rest,
   * applied in order. In the worker, one statement: it fills the part's row, or makes one for a part the station
   * never saw (verdict 'reject', code NOT_INSPECTED, reason 'not_seen', plc_status 'none', run_id / seq /
   * captured_at_ms from `fill`), which the part's record, if it comes later, fills in. First decision wins,
   * except that 'late' replaces 'timeout'; an ignored outcome is counted (`stats.outcomesKept`) and, when it
   * differs from the kept one, logged.
   */
  setGateOutcome(o: GateOutcomeFact): void {
    const row: GateTuple = [o.fill.runId, o.fill.seq, o.fill.capturedAtMs, o.lineEpoch, o.partId, o.outcome, o.atMs];
    this.stats.gateOutcomes++;
    this.enqueue({ k: 'gate', row });
  }

  /** The one-row-per-part books (all runs, or one); sees everything queued before the call. */
  async partAccounting(runId?: string): Promise<PartAccounting> {
    return (await this.ask(runId === undefined ? { kind: 'partAccounting' } : { kind: 'partAccounting', runId })) as PartAccounting;
  }

  /** The highest part id stored for a PLC numbering epoch, 0 if none (on restart: where the missed parts begin). */
  async lastPartId(lineEpoch: number): Promise<number> {
    return (await this.ask({ kind: 'lastPartId', lineEpoch })) as number;
  }

  /** The row of a PLC-numbered part, or null; sees everything queued before the call. */
  async part(lineEpoch: number, partId: number): Promise<ResultRow | null> {
    return (await this.ask({ kind: 'part', lineEpoch, partId })) as ResultRow | null;
  }

  /** Queue a shadow model's verdict on a part (model registry shadow mode). Never blocks, never drops. */
  addShadow(row: ShadowTuple): void {
    this.enqueue({ k: 'shd', row });
  }

  /** Agreement of a shadow model with the live verdicts; sees everything queued before the call. */
  async shadowReport(q: { modelName: string; modelVersion: string; runId?: string; limit: number }): Promise<ShadowReportRows> {
    return (await this.ask({ kind: 'shadowReport', ...q })) as ShadowReportRows;
  }

  /**
   * Patch a result with facts that arrive later (PLC write done, image written).
   * Fields left undefined are untouched, so the PLC and image patches can come
   * in any order, before or after the add() is committed, and both stick.
   */
  update(seq: number, runId: string, patch: ResultPatch): void {
    let mask = 0;
    if (patch.plcWriteMs !== undefined) mask |= PatchBit.plcWriteMs;
    if (patch.plcStatus !== undefined) mask |= PatchBit.plcStatus;
    if (patch.imagePath !== undefined) mask |= PatchBit.imagePath;
    if (patch.anomalyMapPath !== undefined) mask |= PatchBit.anomalyMapPath;
    if (mask === 0) return;
    this.stats.updates++;
    this.enqueue({
      k: 'upd', runId, seq, mask,
      plcWriteMs: patch.plcWriteMs ?? null, plcStatus: patch.plcStatus ?? null,
      imagePath: patch.imagePath ?? null, anomalyMapPath: patch.anomalyMapPath ?? null,
    });
  }

  /** Resolves once every operation queued so far is committed (waits through worker restarts). */
  flush(): Promise<void> {
    this.seal();
    if (this.unacked.length === 0) return Promise.resolve();
    const upTo = this.lastBatchId;
    return new Promise((resolve) => this.flushWaiters.push({ upTo, resolve }));
  }

  /** Number of stored results (all runs, or one). Sees everything queued before the call. */
  async count(runId?: string): Promise<number> {
    return (await this.ask(runId === undefined ? { kind: 'count' } : { kind: 'count', runId })) as number;
  }

  /** Stored rows, oldest first unless order is 'desc'. Sees everything queued before the call. */
  async query(q: { runId?: string; verdict?: Verdict; limit: number; offset?: number; order?: 'asc' | 'desc' }): Promise<ResultRow[]> {
    const spec: QuerySpec = { kind: 'rows', limit: q.limit, offset: q.offset ?? 0, order: q.order ?? 'asc' };
    if (q.runId !== undefined) spec.runId = q.runId;
    if (q.verdict !== undefined) spec.verdict = q.verdict;
    return (await this.ask(spec)) as ResultRow[];
  }

  /** Flush, then stop the worker. add()/update() after close() throw. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    if (this.closed) return;
    this.closeRequested = true;
    await this.flush();
    this.closing = true;
    if (this.ready) {
      // the worker closes the database, answers 'closed' and ends by itself (not a death: closed first)
      await new Promise<void>((resolve) => {
        const done = (): void => { this.sw.off('closed', done); this.sw.off('death', done); resolve(); };
        this.sw.on('closed', done);
        this.sw.on('death', done);
        this.sw.post({ type: 'close' } satisfies ToStoreWorker);
      });
    }
    await this.sw.close();
    this.closed = true;
    this.ready = false;
    this.stats.workerUp = false;
  }

  /** @internal test hook: kill the worker as a crash would (terminate). */
  async _terminateWorkerForTest(): Promise<void> {
    await this.sw.worker?.terminate();
  }

  /** Tests only (testHooks.kill): end the worker for real (terminate), as a crash would; it is respawned and replays. */
  async debugKill(): Promise<void> {
    if (!this.opts.testHooks?.kill) throw new Error('debugKill() needs testHooks.kill');
    await this.sw.worker?.terminate();
  }

  // ------------------------------------------------------------ internals --

  private enqueue(op: StoreOp): void {
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

  private ask(q: QuerySpec): Promise<unknown> {
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

  private onReady(m: Ready, restart: boolean): void {
    if (this.closing) return;
    this.ready = true;
    this.stats.workerUp = true;
    this.log.debug({ userVersion: m.userVersion, journalMode: m.journalMode }, 'store worker ready');
    const replayed = this.unacked.length;
    for (const b of this.unacked) this.postBatch(b);
    for (const pq of this.queries.values()) this.postQuery(pq);
    if (restart && replayed > 0) this.log.warn({ batches: replayed }, 'store worker respawned; replaying unacknowledged batches');
  }

  /** The worker died (the supervisor respawns it): nothing is lost, everything unacknowledged is replayed when it is back. */
  private onDeath(reason: string): void {
    this.ready = false;
    this.stats.workerUp = false;
    if (this.closing) { void this.sw.close(); return; }
    this.stats.restarts++;
    this.log.error({ reason, backlog: this.stats.backlog, unackedBatches: this.unacked.length },
      'store worker died; results are buffered in memory and will be replayed');
  }

  private onMessage(m: FromStoreWorker): void {
    switch (m.type) {
      case 'committed': {
        const i = this.unacked.findIndex((b) => b.id === m.id);
        if (i < 0) break;
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
        break;
      }
      case 'result': {
        const pq = this.queries.get(m.id);
        if (!pq) break;
        this.queries.delete(m.id);
        if (m.ok) pq.resolve(m.value); else pq.reject(new Error(m.error));
        break;
      }
      case 'log':
        this.log[m.level](m.data ?? {}, m.msg);
        break;
      case 'closed':
        // the worker ends by itself now: close the supervisor first, so that its exit is no death
        void this.sw.close();
        break;
    }
  }
}

const require = createRequire(import.meta.url);

/**
 * A read-only connection to the results database (for the HTTP server worker).
 * WAL lets it read while the store worker writes; it sees committed batches.
 */
export function openReadOnly(dbPath: string): BetterSqlite3.Database {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}
