/**
 * The export worker: runs one export (`runExport`) off the server's event
 * loop, at a low CPU priority (nice 10 on this thread; sharp's own threads
 * keep theirs), posting progress at most every 100 ms, then its result.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../core/errors.js';
import { runExport, type ExportProgress, type ExportResult, type RunExportOptions } from './run-export.js';

export type ExportWorkerData = Omit<RunExportOptions, 'onProgress' | 'log'> & { id: string; nice: number };
export type FromExportWorker =
  | { type: 'progress'; progress: ExportProgress }
  | { type: 'done'; result: ExportResult }
  | { type: 'error'; error: { code: string; message: string; statusCode?: number } };

const port = parentPort;
if (!port) throw new Error('export-worker.ts must run as a worker thread');
const data = workerData as ExportWorkerData;
try { os.setPriority(0, data.nice); } catch { /* keep the inherited priority */ }
let last = 0;
try {
  const result = await runExport({
    ...data,
    onProgress: (p) => {
      const t = performance.now();
      if (p.phase !== 'write' || p.done === p.total || t - last > 100) { last = t; port.postMessage({ type: 'progress', progress: p } satisfies FromExportWorker); }
    },
  });
  port.postMessage({ type: 'done', result } satisfies FromExportWorker);
} catch (err) {
  const statusCode = (err as { statusCode?: number }).statusCode;
  port.postMessage({ type: 'error', error: { ...describeError(err), statusCode } } satisfies FromExportWorker);
}
