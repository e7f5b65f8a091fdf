// Worker A loads the addon, worker B loads it after A and exits; then A rebuilds its pipeline.
// Unpatched, A's findChild() used B's (dead) constructor handle and the process segfaulted.
import { Worker } from 'node:worker_threads';

const worker = () => new Worker(new URL('./gst-isolates-worker.cjs', import.meta.url));
const ask = (w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); w.postMessage('build'); });
const a = worker();
const out = [await ask(a)];
const b = worker();
out.push(await ask(b));
await b.terminate();
for (let i = 0; i < 3; i++) out.push(await ask(a));
await a.terminate();
process.stdout.write(JSON.stringify(out));
