/**
 * Exports started over HTTP: each runs in its own export worker thread,
 * spawned from the server worker, so neither the station's hot path nor the
 * HTTP event loop does the copying, rasterising or hashing. Progress lives
 * here (memory); what was exported lives in the review database
 * (`ExportRegistry`, written by the worker).
 */
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
import { ExportBusyError } from './errors.js';
import type { ExportRecord } from './export-registry.js';
import { newExportId, type ExportProgress, type ExportResult } from './run-export.js';
import { checkFilter, normaliseFilter } from './selection.js';
import type { ExportFilter, ExportFormat } from './schema.js';
import type { ExportWorkerData, FromExportWorker } from './export-worker.js';

const WORKER_URL = new URL('./export-worker.ts', import.meta.url);

export interface ExportJobsOptions {
  resultsDbPath: string;
  reviewDbPath: string;
  imagesDir: string;
  /** exports go to <exportsDir>/<id>-<format> (default <imagesDir>/exports) */
  exportsDir?: string;
  stationClasses: readonly string[];
  maxRunning?: number;
  logger: Pick<Logger, 'info' | 'error'>;
}

export interface ExportJob {
  id: string; format: ExportFormat; filter: ExportFilter; actor: string; outDir: string;
  status: 'running' | 'done' | 'failed'; progress: ExportProgress; createdAtMs: number; finishedAtMs: number | null;
  result: ExportResult | null; error: { code: string; message: string } | null;
}

export class ExportJobs {
  private readonly jobs = new Map<string, ExportJob>();
  private readonly workers = new Map<string, Worker>();
  private readonly exportsDir: string;

  constructor(private readonly opts: ExportJobsOptions) {
    this.exportsDir = resolve(opts.exportsDir ?? join(opts.imagesDir, 'exports'));
  }

  get running(): number { return this.workers.size; }

  /** Start an export in a worker; returns at once. Bad filters throw a coded 400. */
  start(req: { format: ExportFormat; filter?: ExportFilter; actor: string; classes?: readonly string[] }): ExportJob {
    const filter = normaliseFilter(checkFilter(req.filter ?? {}));
    const max = this.opts.maxRunning ?? 1;
    if (this.workers.size >= max) throw new ExportBusyError(max);
    const id = newExportId();
    const outDir = join(this.exportsDir, `${id}-${req.format}`);
    const job: ExportJob = {
      id, format: req.format, filter, actor: req.actor, outDir, status: 'running',
      progress: { phase: 'select', done: 0, total: 0 }, createdAtMs: Date.now(), finishedAtMs: null, result: null, error: null,
    };
    this.jobs.set(id, job);
    const data: ExportWorkerData = {
      id, format: req.format, filter, resultsDbPath: this.opts.resultsDbPath, reviewDbPath: this.opts.reviewDbPath,
      imagesDir: this.opts.imagesDir, outDir, stationClasses: [...(req.classes ?? this.opts.stationClasses)], actor: req.actor, nice: 10,
    };
    const w = spawnTsWorker(WORKER_URL, data);
    this.workers.set(id, w);
    const finish = (status: 'done' | 'failed'): void => {
      job.status = status;
      job.finishedAtMs = Date.now();
      this.workers.delete(id);
    };
    w.on('message', (m: FromExportWorker) => {
      if (m.type === 'progress') job.progress = m.progress;
      else if (m.type === 'done') { job.result = m.result; job.progress = { phase: 'done', done: m.result.counts.images, total: m.result.counts.images }; finish('done'); }
      else { job.error = { code: m.error.code, message: m.error.message }; finish('failed'); this.opts.logger.error({ id, error: m.error }, 'export failed'); }
    });
    w.on('error', (err) => { if (job.status === 'running') { job.error = { code: 'INSPECTOR_EXPORT_FAILED', message: err.message }; finish('failed'); } });
    w.on('exit', () => { if (job.status === 'running') { job.error = { code: 'INSPECTOR_EXPORT_FAILED', message: 'export worker exited' }; finish('failed'); } });
    this.opts.logger.info({ id, format: req.format, filter, actor: req.actor }, 'export started');
    return job;
  }

  get(id: string): ExportJob | null { return this.jobs.get(id) ?? null; }

  /** Jobs started by this server, newest first. */
  all(): ExportJob[] { return [...this.jobs.values()].reverse(); }

  /** A job started by this server, or an export recorded in the review db (CLI, earlier runs). */
  view(id: string, recorded: ExportRecord | null): ExportJob | null {
    return this.jobs.get(id) ?? (recorded ? jobFromRecord(recorded) : null);
  }

  /** Resolves when the job is no longer running (tests, shutdown). */
  async settled(id: string): Promise<ExportJob | null> {
    const w = this.workers.get(id);
    if (w) await new Promise<void>((r) => w.once('exit', () => r()));
    return this.jobs.get(id) ?? null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.terminate()));
  }
}

/** An export as the review database recorded it (no live progress). */
export function jobFromRecord(recorded: ExportRecord): ExportJob {
  const n = recorded.counts?.images ?? 0;
  const done = recorded.status === 'done';
  return {
    id: recorded.id, format: recorded.format, filter: recorded.filter, actor: recorded.actor, outDir: recorded.outDir,
    status: recorded.status, progress: { phase: done ? 'done' : 'write', done: done ? n : 0, total: n },
    createdAtMs: recorded.createdAtMs, finishedAtMs: recorded.finishedAtMs,
    result: recorded.counts && recorded.manifestSha256
      ? { id: recorded.id, outDir: recorded.outDir, counts: recorded.counts, manifestSha256: recorded.manifestSha256, files: 0, bytes: 0 } : null,
    error: recorded.error ? { code: 'INSPECTOR_EXPORT_FAILED', message: recorded.error } : null,
  };
}
