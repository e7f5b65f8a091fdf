/**
 * A tiny real worker for test/supervised-worker.test.ts. workerData says how it
 * starts; messages make it echo, exit, throw or hang (Atomics.wait).
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';

export interface TestWorkerData {
  /** 'ok': ready at once; 'fail': posts a start error; 'silent': never ready; 'exit-after-ready': ready, then exit(code) */
  mode: 'ok' | 'fail' | 'silent' | 'exit-after-ready';
  /** which start this is (SupervisedWorker's start number) */
  start: number;
  code?: number;
}

export type ToTestWorker =
  | { t: 'echo'; v: number }
  | { t: 'exit'; code: number }
  | { t: 'throw' }
  | { t: 'hang'; ms: number };

export type FromTestWorker =
  | { t: 'ready'; start: number; threadId: number }
  | { t: 'error'; message: string }
  | { t: 'echo'; v: number; start: number };

const port = parentPort!;
const data = workerData as TestWorkerData;
const post = (m: FromTestWorker): void => port.postMessage(m);

port.on('message', (m: ToTestWorker) => {
  switch (m.t) {
    case 'echo': post({ t: 'echo', v: m.v, start: data.start }); return;
    case 'exit': process.exit(m.code);
    case 'throw': setImmediate(() => { throw new Error('test worker: uncaught error requested'); }); return;
    case 'hang': Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms); return;
  }
});

if (data.mode === 'fail') {
  post({ t: 'error', message: 'test worker: start refused' });
} else if (data.mode !== 'silent') {
  post({ t: 'ready', start: data.start, threadId });
  // exit on a later turn: the ready message is out first
  if (data.mode === 'exit-after-ready') setTimeout(() => process.exit(data.code ?? 3), 0);
}
