/**
 * The machine's own floor: how late a thread runs after a 1 ms sleep.
 *
 * Every hand-over on the hot path (trigger → capture worker → GStreamer → appsink pull →
 * main thread → inference worker → main thread → PLC) is a thread waking up. However
 * little the station does, a part cannot be faster than the wake-ups it needs, so the
 * benchmark measures this before the line starts (`machine_wake_late_ms`) and the README
 * reads its latency figures against it. Like cyclictest: `threads` threads each sleep
 * 1 ms (Atomics.wait) in a loop and record how far past 1 ms they woke.
 *
 *   npx tsx scripts/wake-latency.ts [--threads 2] [--seconds 5]
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';

export interface WakeLatency { threads: number; wakes: number; p50: number; p99: number; p999: number; max: number }

// plain JS, run with eval: no TypeScript loader needed inside the probe threads
const PROBE = `
const { workerData, parentPort } = require('node:worker_threads');
const i32 = new Int32Array(new SharedArrayBuffer(4));
const late = new Float64Array(workerData.max);
let n = 0;
const end = process.hrtime.bigint() + BigInt(Math.round(workerData.seconds * 1e9));
for (;;) {
  const t = process.hrtime.bigint();
  if (t > end || n === late.length) break;
  Atomics.wait(i32, 0, 0, 1);
  late[n++] = Number(process.hrtime.bigint() - t) / 1e6 - 1;
}
parentPort.postMessage(late.subarray(0, n));
`;

/** Sleep-and-wake `threads` threads for `seconds`; how late they woke, in ms. */
export async function wakeLatency(threads = 2, seconds = 3): Promise<WakeLatency> {
  const max = Math.ceil(seconds * 1100); // at most one wake per ms
  const parts = await Promise.all(Array.from({ length: threads }, () => new Promise<Float64Array>((resolve, reject) => {
    const w = new Worker(PROBE, { eval: true, workerData: { seconds, max } });
    w.once('message', (m: Float64Array) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  })));
  const all = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let k = 0;
  for (const p of parts) { all.set(p, k); k += p.length; }
  all.sort();
  const q = (x: number): number => all[Math.min(all.length - 1, Math.max(0, Math.ceil(x * all.length) - 1))] ?? Number.NaN;
  return { threads, wakes: all.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: all[all.length - 1] ?? Number.NaN };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const o = new Command('wake-latency')
    .option('--threads <n>', 'probe threads', (v) => parseInt(v, 10), 2)
    .option('--seconds <s>', 'how long', (v) => parseFloat(v), 5)
    .parse(process.argv).opts<{ threads: number; seconds: number }>();
  const r = await wakeLatency(o.threads, o.seconds);
  console.log(`${r.threads} threads, ${r.wakes} wakes after a 1 ms sleep: late p50 ${r.p50.toFixed(3)}  p99 ${r.p99.toFixed(3)}  `
    + `p99.9 ${r.p999.toFixed(3)}  max ${r.max.toFixed(2)} ms`);
}
