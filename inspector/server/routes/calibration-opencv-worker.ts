/**
 * The calibration OpenCV worker: the one thread of the process that loads the
 * binding (it is not context-aware, see inspector/core/opencv.ts). Started on
 * the first lens/plane/board request by calibration-opencv.ts and kept for the
 * life of the process; jobs run one after the other.
 *   in:  { id, op, args }
 *   out: { id, t: 'start' } once the inputs are read and the OpenCV part begins,
 *        then { id, t: 'done', result } or { id, t: 'error', error: { name, message, code?, statusCode? } }
 */
import { parentPort } from 'node:worker_threads';
import { openCvOps, type OpenCvOp } from './calibration-opencv-ops.js';

const port = parentPort!;
let queue: Promise<void> = Promise.resolve();
port.on('message', (m: { id: number; op: OpenCvOp; args: unknown }) => {
  queue = queue.then(async () => {
    try {
      const run = openCvOps[m.op] as (a: unknown, started: () => void) => Promise<unknown>;
      const result = await run(m.args, () => port.postMessage({ id: m.id, t: 'start' }));
      port.postMessage({ id: m.id, t: 'done', result });
    } catch (err) {
      const e = err as Error & { code?: string; statusCode?: number };
      port.postMessage({ id: m.id, t: 'error', error: { name: e.name, message: e.message, code: e.code, statusCode: e.statusCode } });
    }
  });
});
port.postMessage({ t: 'ready' });
