/**
 * Periodic retention for a running station: every `intervalMs` a fresh
 * retention worker (nice 19) does one pass; the main thread only receives the
 * report, queues the deleted parts' row updates on the ResultStore (chunked)
 * and counts freed bytes in the metrics. One pass at a time; the timer and the
 * worker are unref'd so they never hold the process open.
 *
 * Each pass's worker goes through core/supervised-worker.ts with restart off
 * (a pass is one-shot: the next interval starts a fresh worker): a ready
 * handshake, then its answer. A worker that dies before it answers fails the
 * pass and is a death: 'worker-death' ({ worker: 'retention', reason, generation,
 * deaths }); the next pass whose worker answers emits 'worker-ready'. Counters:
 * `supervision` (restarts stay 0).
 */
import { EventEmitter } from 'node:events';
import client from 'prom-client';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import type { WorkerDeathEvent, WorkerReadyEvent } from '../core/worker-events.js';
import type { ResultStore } from '../results/result-store.js';
import { markDeleted } from './mark-deleted.js';
import type { RetentionPolicy, RetentionReport } from './retention.js';
import type { FromRetentionWorker, RetentionWorkerData } from './retention-worker.js';

const WORKER_URL = new URL('./retention-worker.ts', import.meta.url);

export interface RetentionSchedulerOptions extends RetentionPolicy {
  imagesDir: string;
  resultsDbPath: string;
  reviewDbPath: string;
  intervalMs: number;
  store: Pick<ResultStore, 'update'>;
  logger: Logger;
  /** registers inspector_retention_* metrics here when given */
  registry?: client.Registry;
  nice?: number;
}

export class RetentionScheduler extends EventEmitter {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RetentionReport> | null = null;
  private worker: SupervisedWorker | null = null;
  private closed = false;
  /** the last pass's worker died: the next one that answers is reported ready */
  private down = false;
  /** retention workers started (each pass's is the next generation) */
  private spawned = 0;
  /** retention workers that died before answering (restarts: none, each pass starts its own) */
  readonly supervision = { worker: 'retention', deaths: 0, restarts: 0, lastDeathReason: null as string | null };
  private readonly freedBytes?: client.Counter;
  private readonly freedFiles?: client.Counter;
  private readonly usage?: client.Gauge;
  private readonly passes?: client.Counter<'outcome'>;

  private constructor(private readonly opts: RetentionSchedulerOptions) {
    super();
    const registers = opts.registry ? [opts.registry] : [];
    if (opts.registry) {
      this.freedBytes = new client.Counter({ name: 'inspector_retention_freed_bytes_total', help: 'Bytes of images deleted by retention', registers });
      this.freedFiles = new client.Counter({ name: 'inspector_retention_freed_files_total', help: 'Image files deleted by retention', registers });
      this.usage = new client.Gauge({ name: 'inspector_retention_usage_bytes', help: 'Disk used by images and exports after the last retention pass', registers });
      this.passes = new client.Counter({ name: 'inspector_retention_passes_total', help: 'Retention passes by outcome', labelNames: ['outcome'], registers });
    }
  }

  static start(opts: RetentionSchedulerOptions): RetentionScheduler {
    const s = new RetentionScheduler(opts);
    s.timer = setInterval(() => { void s.runNow().catch(() => undefined); }, opts.intervalMs);
    s.timer.unref();
    return s;
  }

  /** Run a pass now (or join the one running). */
  runNow(): Promise<RetentionReport> {
    this.running ??= this.pass().finally(() => { this.running = null; });
    return this.running;
  }

  private async pass(): Promise<RetentionReport> {
    const log = this.opts.logger;
    const data: RetentionWorkerData = {
      budgetBytes: this.opts.budgetBytes, rejectDays: this.opts.rejectDays, passDays: this.opts.passDays,
      passKeepEvery: this.opts.passKeepEvery, imagesDir: this.opts.imagesDir, resultsDbPath: this.opts.resultsDbPath,
      reviewDbPath: this.opts.reviewDbPath, nice: this.opts.nice ?? 19,
    };
    try {
      const msg = await this.runWorker(data);
      if (msg.type === 'error') throw Object.assign(new Error(msg.error.message), { code: msg.error.code });
      const { report, deleted } = msg;
      if (!this.closed) await markDeleted(this.opts.store, deleted);
      log[report.budgetMet ? 'info' : 'warn']({ freedFiles: report.freedFiles, freedBytes: report.freedBytes,
        usageAfter: report.usageAfter, budgetBytes: report.budgetBytes, byReason: report.byReason, kept: report.kept },
      report.budgetMet ? 'retention pass done' : 'retention pass done; still over the disk budget (the rest is labelled or exported)');
      this.freedBytes?.inc(report.freedBytes);
      this.freedFiles?.inc(report.freedFiles);
      this.usage?.set(report.usageAfter);
      this.passes?.inc({ outcome: report.budgetMet ? 'ok' : 'over_budget' });
      return report;
    } catch (err) {
      this.passes?.inc({ outcome: 'error' });
      log.error({ err }, 'retention pass failed');
      throw err;
    }
  }

  /** One pass in a fresh worker: its answer, or a rejection if it dies first (a death, counted and emitted). */
  private async runWorker(data: RetentionWorkerData): Promise<Exclude<FromRetentionWorker, { type: 'ready' }>> {
    const sw = new SupervisedWorker({ name: 'retention', url: WORKER_URL, workerData: () => data, unref: true, startTimeoutMs: 60_000 });
    this.worker = sw;
    const generation = ++this.spawned;
    try {
      const answer = new Promise<Exclude<FromRetentionWorker, { type: 'ready' }>>((resolve, reject) => {
        sw.on('message', (m: FromRetentionWorker) => {
          if (m.type === 'ready') return;
          void sw.close(); // before the worker ends by itself: its exit is then no death
          resolve(m);
        });
        // restart off: a pass is one-shot; close at the death (no restart is scheduled)
        sw.on('death', (d: { reason: string }) => { void sw.close(); reject(this.died(d.reason, generation)); });
        sw.on('closed', () => reject(new Error('retention worker closed before answering')));
      });
      answer.catch(() => undefined); // awaited below unless the start fails first
      try {
        await sw.start();
      } catch (err) {
        throw this.died((err as Error).message, generation);
      }
      const m = await answer;
      if (this.down) {
        this.down = false;
        this.emit('worker-ready', { worker: 'retention', generation, restarts: 0 } satisfies WorkerReadyEvent);
      }
      return m;
    } finally {
      await sw.close();
      if (this.worker === sw) this.worker = null;
    }
  }

  private died(reason: string, generation: number): Error {
    this.supervision.deaths++;
    this.supervision.lastDeathReason = reason;
    this.down = true;
    this.opts.logger.error({ worker: 'retention', reason }, 'retention worker died before answering');
    this.emit('worker-death', { worker: 'retention', reason, generation, deaths: this.supervision.deaths } satisfies WorkerDeathEvent);
    return new Error(`retention worker died before answering: ${reason}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.worker?.close();
  }
}
