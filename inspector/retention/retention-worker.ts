/**
 * The retention worker: one retention pass at the lowest CPU priority
 * (nice 19 on this thread; its file system calls are synchronous so they run
 * here, not on libuv's shared pool), then it answers and exits.
 * Started through core/supervised-worker.ts (retention-scheduler.ts): `ready`
 * once loaded is the handshake, then `done` or `error` ends the pass.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../core/errors.js';
import { runRetention, type DeletedPart, type RetentionOptions, type RetentionReport } from './retention.js';

export type RetentionWorkerData = Omit<RetentionOptions, 'log'> & { nice: number };
export type FromRetentionWorker =
  | { type: 'ready' }
  | { type: 'done'; report: RetentionReport; deleted: DeletedPart[] }
  | { type: 'error'; error: { code: string; message: string } };

const port = parentPort;
if (!port) throw new Error('retention-worker.ts must run as a worker thread');
const data = workerData as RetentionWorkerData;
try { os.setPriority(0, data.nice); } catch { /* not permitted: run at the inherited priority */ }
port.postMessage({ type: 'ready' } satisfies FromRetentionWorker);
try {
  const { report, deleted } = await runRetention(data);
  port.postMessage({ type: 'done', report, deleted } satisfies FromRetentionWorker);
} catch (err) {
  port.postMessage({ type: 'error', error: describeError(err) } satisfies FromRetentionWorker);
}
