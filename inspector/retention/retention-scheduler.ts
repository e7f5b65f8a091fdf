/**
 * Periodic retention for a running station: every `intervalMs` a fresh
 * retention worker (nice 19) does one pass; the main thread only receives the
 * report, queues the deleted parts' row updates on the ResultStore (chunked)
 * and counts freed bytes in the metrics. One pass at a time; the timer and the
 * worker are unref'd so they never hold the process open.
 */
import type { Worker } from 'node:worker_threads';
import client from 'prom-client';
import type { Logger } from '../core/logger.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
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

export class RetentionScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RetentionReport> | null = null;
  private worker: Worker | null = null;
  private closed = false;
  private readonly freedBytes?: client.Counter;
  private readonly freedFiles?: client.Counter;
  private readonly usage?: client.Gauge;
  private readonly passes?: client.Counter<'outcome'>;

  private constructor(private readonly opts: RetentionSchedulerOptions) {
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
      const msg = await new Promise<FromRetentionWorker>((resolve, reject) => {
        const w = spawnTsWorker(WORKER_URL, data);
        this.worker = w;
        w.unref();
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`retention worker exited with code ${code} before answering`)));
      });
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
    } finally {
      this.worker = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.worker?.terminate();
  }
}
