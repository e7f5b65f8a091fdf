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
 *
 * This file is the store's API and its worker's lifecycle. The batching and query
 * bookkeeping is store-backlog.ts (StoreBacklog, the base class), the public shapes are
 * result-store-types.ts and openReadOnly() is read-only-db.ts; all are re-exported here,
 * so importers keep this one path.
 */
import type { Verdict } from '../core/types.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import { relayWorkerEvents, supervisionOf, type WorkerSupervision } from '../core/worker-events.js';
// Type-only: importing store-worker.ts for values would run the worker here.
import type {
  FromStoreWorker, GateTuple, PartAccounting, QuerySpec, RowTuple, ShadowReportRows, ShadowTuple,
  StoreWorkerData, ToStoreWorker,
} from './store-worker.js';
import type { GateOutcomeFact, ResultPatch, ResultRow, ResultStoreOptions, StoreRecord } from './result-store-types.js';
import { StoreBacklog, type Ready } from './store-backlog.js';

export type { PartAccounting } from './store-worker.js';
export type {
  GateOutcomeFact, ResultPatch, ResultRow, ResultStoreOptions, ResultStoreStats, StoreRecord,
} from './result-store-types.js';
export { openReadOnly } from './read-only-db.js';

const WORKER_URL = new URL('./store-worker.ts', import.meta.url);
/** Bits of an update's mask (must match the CASE WHEN tests in store-worker.ts). */
const PatchBit = { plcWriteMs: 1, plcStatus: 2, imagePath: 4, anomalyMapPath: 8 } as const;

/** The store worker under its supervisor; ResultStore's constructor hands it to StoreBacklog. */
function storeWorker(opts: ResultStoreOptions): SupervisedWorker<Ready> {
  const backoff = opts.restartBackoffMs ?? { initial: 100, max: 5000 };
  const { kill: _kill, ...hooks } = opts.testHooks ?? {};
  void _kill;
  return new SupervisedWorker<Ready>({
    name: 'result-store', url: WORKER_URL,
    workerData: (start): StoreWorkerData => ({ dbPath: opts.dbPath, ...(start === 0 ? hooks : {}) }),
    startFailure: (reason) => new Error(`store worker for ${opts.dbPath} failed to start: ${reason}`),
    backoff: { initialMs: backoff.initial, maxMs: backoff.max },
  });
}

export class ResultStore extends StoreBacklog {
  /** the final flush is done: a worker exit is no longer a death */
  private closing = false;
  private closePromise: Promise<void> | null = null;

  private constructor(private readonly opts: ResultStoreOptions) {
    super(opts.logger.child({ mod: 'result-store' }), opts.batchMs ?? 50, opts.maxBatch ?? 256, storeWorker(opts));
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

  private onReady(m: Ready, restart: boolean): void {
    if (this.closing) return;
    this.ready = true;
    this.stats.workerUp = true;
    this.log.debug({ userVersion: m.userVersion, journalMode: m.journalMode }, 'store worker ready');
    const replayed = this.replayUnanswered();
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
      case 'committed':
        this.onCommitted(m);
        break;
      case 'result':
        this.onAnswer(m);
        break;
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
