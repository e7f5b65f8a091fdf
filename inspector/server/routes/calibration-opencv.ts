/**
 * Where the calibration routes' OpenCV work runs (lens fit: seconds; board detection;
 * plane fits): never in the thread that serves HTTP, so a lens fit does not stop
 * /health, the live feed or the review API from answering.
 *
 *   const lens = await runOpenCv('lens', { imagesDir, files, board });
 *
 * The OpenCV binding is not context-aware: at most one thread per process may ever load
 * it — a second thread loading it, even after the first one ended, aborts the process
 * (inspector/core/opencv.ts). So:
 *  - if this thread has loaded the binding already (a CLI, a test that uses OpenCV itself
 *    and serves the app in-process), the work runs inline here, as before;
 *  - otherwise ONE worker (calibration-opencv-worker.ts) is started on the first job and
 *    kept for the life of this thread (unref'd while idle, so it never holds the process
 *    open); every later job goes to it. It is started through the one supervised-worker
 *    abstraction (core/supervised-worker.ts: its `ready` is the handshake) with restart
 *    off: it is never restarted (a second load of the binding would abort the process).
 *    If it dies, the jobs in flight and every later one answer 503
 *    INSPECTOR_CALIBRATION_WORKER_GONE until the station restarts.
 * `openCvJobs` emits 'start' ({ id, op }) when a job's OpenCV part begins and 'end'
 * ({ id, op, ok }) when it is over (tests and logs watch it), and 'worker-death'
 * ({ worker: 'calibration-opencv', reason, generation, deaths }) when the worker dies or
 * fails to start (the server worker tells the station: server-host.ts). Counters:
 * `openCvSupervision`.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { SupervisedWorker } from '../../core/supervised-worker.js';
import type { WorkerDeathEvent } from '../../core/worker-events.js';
import { CalibrationWorkerGoneError } from '../../../calibration/errors.js';
import type { OpenCvOp, OpenCvOps } from './calibration-opencv-ops.js';

type Args<K extends OpenCvOp> = Parameters<OpenCvOps[K]>[0];
type Result<K extends OpenCvOp> = Awaited<ReturnType<OpenCvOps[K]>>;
type WorkerMsg = { id?: number; t: 'start' | 'done' | 'error' | 'ready'; result?: unknown;
  error?: { name: string; message: string; code?: string; statusCode?: number } };

export const openCvJobs = new EventEmitter();
/** The calibration OpenCV worker's deaths (a failed start included); it is never restarted. */
export const openCvSupervision = { deaths: 0, restarts: 0 };

const require = createRequire(import.meta.url);
/** Whether this thread has loaded the binding (the CommonJS cache is per thread). */
export function openCvLoadedHere(): boolean {
  try { return require.resolve('@u4/opencv4nodejs') in require.cache; } catch { return false; }
}

let worker: Promise<SupervisedWorker> | null = null;
let gone: string | null = null;
let nextId = 1;
const pending = new Map<number, { op: OpenCvOp; resolve: (v: unknown) => void; reject: (e: Error) => void }>();

function revive(e: NonNullable<WorkerMsg['error']>): Error {
  return Object.assign(new Error(e.message), { name: e.name, ...(e.code ? { code: e.code } : {}), ...(e.statusCode ? { statusCode: e.statusCode } : {}) });
}

function failAll(why: string): void {
  if (gone) return;
  gone = why;
  openCvSupervision.deaths++;
  openCvJobs.emit('worker-death', { worker: 'calibration-opencv', reason: why, generation: 1, deaths: openCvSupervision.deaths } satisfies WorkerDeathEvent);
  for (const [id, p] of pending) { openCvJobs.emit('end', { id, op: p.op, ok: false }); p.reject(new CalibrationWorkerGoneError(why)); }
  pending.clear();
}

/** The one worker, started on the first call (ready handshake); rejects if it cannot start or has died. */
function theWorker(): Promise<SupervisedWorker> {
  if (gone) return Promise.reject(new CalibrationWorkerGoneError(`${gone} (it cannot be restarted in this process: restart the station)`));
  worker ??= (async () => {
    const sw = new SupervisedWorker({
      name: 'calibration-opencv', url: new URL('./calibration-opencv-worker.ts', import.meta.url),
      workerData: () => undefined, unref: true, startTimeoutMs: 120_000,
    });
    sw.on('message', (m: WorkerMsg) => {
      const p = m.id !== undefined ? pending.get(m.id) : undefined;
      if (!p || m.id === undefined) return;
      if (m.t === 'start') { openCvJobs.emit('start', { id: m.id, op: p.op }); return; }
      pending.delete(m.id);
      if (pending.size === 0) sw.worker?.unref();
      openCvJobs.emit('end', { id: m.id, op: p.op, ok: m.t === 'done' });
      if (m.t === 'done') p.resolve(m.result); else p.reject(revive(m.error!));
    });
    // restart off: close at the death (before the supervisor schedules a restart), fail what waits
    sw.on('death', (d: { reason: string }) => { void sw.close(); failAll(`it died: ${d.reason}`); });
    try {
      await sw.start();
    } catch (err) {
      failAll(`it failed to start: ${(err as Error).message}`);
      throw new CalibrationWorkerGoneError(`${gone} (it cannot be restarted in this process: restart the station)`);
    }
    return sw;
  })();
  return worker;
}

/** Run one OpenCV job of the calibration routes off this thread (or inline where the binding already lives). */
export async function runOpenCv<K extends OpenCvOp>(op: K, args: Args<K>): Promise<Result<K>> {
  const id = nextId++;
  if (openCvLoadedHere()) {
    const { openCvOps } = await import('./calibration-opencv-ops.js');
    const run = openCvOps[op] as (a: Args<K>, started: () => void) => Promise<Result<K>>;
    let ok = false;
    try {
      const r = await run(args, () => openCvJobs.emit('start', { id, op }));
      ok = true;
      return r;
    } finally { openCvJobs.emit('end', { id, op, ok }); }
  }
  const sw = await theWorker();
  return new Promise<Result<K>>((resolve, reject) => {
    pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject });
    sw.worker?.ref();
    if (!sw.post({ id, op, args })) {
      pending.delete(id);
      reject(new CalibrationWorkerGoneError(`${gone ?? 'it is not running'} (it cannot be restarted in this process: restart the station)`));
    }
  });
}
