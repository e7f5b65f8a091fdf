/**
 * Retention for a running station, paced by the write rate: every
 * `checkIntervalMs` a statfs of the images' file system feeds the DiskPacer
 * (disk-pacer.ts), which says when a pass is due (the projected use reaching
 * the high-water mark, the free space nearing its floor, at least every
 * `intervalMs`, at most one per `minIntervalMs`) and whether the disk is low
 * ('disk' events: DiskStatus, the station's DISK_LOW alarm). A pass deletes down
 * to the low-water mark. Each pass: a fresh
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
import { statfs } from 'node:fs/promises';
import client from 'prom-client';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import type { WorkerDeathEvent, WorkerReadyEvent } from '../core/worker-events.js';
import type { ResultStore } from '../results/result-store.js';
import { markDeleted } from './mark-deleted.js';
import type { RetentionPolicy, RetentionReport } from './retention.js';
import type { FromRetentionWorker, RetentionWorkerData } from './retention-worker.js';
import { DiskPacer, type DiskStatus } from './disk-pacer.js';

const WORKER_URL = new URL('./retention-worker.ts', import.meta.url);

export interface RetentionSchedulerOptions extends RetentionPolicy {
  imagesDir: string;
  resultsDbPath: string;
  reviewDbPath: string;
  /** the longest time between two passes */
  intervalMs: number;
  /** statfs samples and pacing decisions every this many ms (default 5000) */
  checkIntervalMs?: number;
  /** at most one pass per this many ms (default 30 000) */
  minIntervalMs?: number;
  /** DISK_LOW and an early pass at this share of the budget (default 0.9) */
  highWaterRatio?: number;
  /** DISK_LOW clears under this share (default 0.85) */
  clearRatio?: number;
  /** a pass deletes down to this share (default 0.8) */
  lowWaterRatio?: number;
  /** DISK_LOW under this much free space on the images' file system (default 2 GiB) */
  freeFloorBytes?: number;
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
  readonly pacer: DiskPacer;
  private checking = false;

  private constructor(private readonly opts: RetentionSchedulerOptions) {
    super();
    this.pacer = new DiskPacer({
      budgetBytes: opts.budgetBytes, highWaterRatio: opts.highWaterRatio ?? 0.9, clearRatio: opts.clearRatio ?? 0.85,
      lowWaterRatio: opts.lowWaterRatio ?? 0.8, freeFloorBytes: opts.freeFloorBytes ?? 2 * 1024 ** 3,
      minIntervalMs: opts.minIntervalMs ?? 30_000, maxIntervalMs: opts.intervalMs, checkIntervalMs: opts.checkIntervalMs ?? 5000,
    }, Date.now());
    const registers = opts.registry ? [opts.registry] : [];
    if (opts.registry) {
      this.freedBytes = new client.Counter({ name: 'inspector_retention_freed_bytes_total', help: 'Bytes of images deleted by retention', registers });
      this.freedFiles = new client.Counter({ name: 'inspector_retention_freed_files_total', help: 'Image files deleted by retention', registers });
      this.usage = new client.Gauge({ name: 'inspector_retention_usage_bytes', help: 'Disk used by images and exports after the last retention pass', registers });
      this.passes = new client.Counter({ name: 'inspector_retention_passes_total', help: 'Retention passes by outcome', labelNames: ['outcome'], registers });
      // read at scrape time from the pacer (no timer of their own)
      const gauge = (name: string, help: string, read: (d: DiskStatus) => number | null): void => {
        new client.Gauge({ name, help, registers, collect() { const v = read(self.disk()); if (v !== null) this.set(v); } });
      };
      const self = this;
      gauge('inspector_disk_images_bytes', 'Bytes of saved images and exports: the last retention pass\'s measure plus the file system\'s growth since', (d) => d.imagesBytes);
      gauge('inspector_disk_budget_bytes', 'The retention budget for images and exports', (d) => d.budgetBytes);
      gauge('inspector_disk_free_bytes', 'Free bytes on the images\' file system', (d) => d.freeBytes);
      gauge('inspector_disk_total_bytes', 'Size of the images\' file system', (d) => d.totalBytes);
      gauge('inspector_disk_write_bytes_per_second', 'Rate the images\' file system is filling at (smoothed)', (d) => d.writeBytesPerSec);
    }
  }

  /** The disk as the pacer sees it now (Live, /metrics, DISK_LOW). */
  disk(): DiskStatus { return this.pacer.status(Date.now()); }

  static start(opts: RetentionSchedulerOptions): RetentionScheduler {
    const s = new RetentionScheduler(opts);
    s.timer = setInterval(() => { void s.check(); }, opts.checkIntervalMs ?? 5000);
    s.timer.unref();
    void s.check();
    return s;
  }

  /** One pacing check: sample the file system, start a pass when due, say how the disk is ('disk'). */
  async check(): Promise<DiskStatus> {
    if (!this.checking && !this.closed) {
      this.checking = true;
      try {
        const fs = await this.sampleFs();
        if (fs) this.pacer.onSample(fs.free, fs.total, Date.now());
        if (!this.running && !this.closed && this.pacer.due(Date.now())) void this.runNow().catch(() => undefined);
      } finally {
        this.checking = false;
      }
    }
    const d = this.disk();
    this.emit('disk', d);
    return d;
  }

  private async sampleFs(): Promise<{ free: number; total: number } | null> {
    try {
      const st = await statfs(this.opts.imagesDir);
      return { free: st.bavail * st.bsize, total: st.blocks * st.bsize };
    } catch (err) {
      this.opts.logger.debug({ err: (err as Error).message, dir: this.opts.imagesDir }, 'statfs of the images folder failed');
      return null;
    }
  }

  /** Run a pass now (or join the one running). */
  runNow(): Promise<RetentionReport> {
    this.running ??= this.pass().finally(() => { this.running = null; });
    return this.running;
  }

  private async pass(): Promise<RetentionReport> {
    const log = this.opts.logger;
    // down to the low-water mark: a pass that stopped at the budget would leave DISK_LOW raised and the next pass due
    this.pacer.onPassStart(Date.now());
    const data: RetentionWorkerData = {
      budgetBytes: this.pacer.lowWaterBytes, rejectDays: this.opts.rejectDays, passDays: this.opts.passDays,
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
      const fs = await this.sampleFs();
      this.pacer.onPassDone(report.usageAfter, fs?.free ?? null, Date.now());
      if (!this.closed) this.emit('disk', this.disk());
      return report;
    } catch (err) {
      this.pacer.onPassFailed(Date.now());
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
