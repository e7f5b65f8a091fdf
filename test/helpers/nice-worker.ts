// Reports this thread's nice, and that of a thread it creates (which inherits it).
import { getPriority } from 'node:os';
import { Worker, parentPort } from 'node:worker_threads';

const child = new Worker("require('node:worker_threads').parentPort.postMessage(require('node:os').getPriority(0))", { eval: true });
child.once('message', (childNice: number) => {
  parentPort!.postMessage({ nice: getPriority(0), childNice });
  void child.terminate();
});
