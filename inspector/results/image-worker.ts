/**
 * The image worker: encodes GRAY8 frames and Float32 anomaly maps from the
 * shared slots to PNG with sharp, one job at a time, and frees each slot by
 * answering `done` only when its files are on disk (or failed).
 *
 * Priority. `os.setPriority(0, n)` here renices this thread only (Linux: nice
 * is per thread). But sharp does its work off this thread: the job runs on a
 * libuv thread-pool thread (process-wide pool, shared with the main thread's
 * fs/crypto/zlib) which hands the pixel work to libvips' own threads
 * ("libvips worker"); measured, nearly all encode CPU is on the latter. So,
 * besides renicing itself, this worker renices every "libvips worker" thread
 * of the process (setpriority on its tid) whenever the thread list changes.
 * libuv pool threads are not renamed by Node 20 and cannot be told apart from
 * V8's platform threads, so they are left alone (they only drive the job).
 * Files are written to a hidden temporary name and renamed: readers (the HTTP
 * server) never see a half-written PNG.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { describeError } from '../core/errors.js';

// ---------------------------------------------------------------- protocol --

export interface ImageWorkerData {
  frameSab: SharedArrayBuffer;
  mapSab: SharedArrayBuffer;
  slotBytes: number;
  mapBytes: number;
  /** root directory; job paths are relative to it */
  dir: string;
  compressionLevel: number;
  /** fixed scale for anomaly maps (value lo → 0, hi → 255); null: per-map min..max */
  mapRange: [number, number] | null;
  /** nice value for this thread and libvips' threads (19 = lowest priority) */
  nice: number;
}

export interface EncodeJob {
  type: 'encode';
  slot: number;
  width: number;
  height: number;
  /** relative paths (under dir) */
  imagePath: string;
  map: { width: number; height: number; path: string } | null;
}

/** new (larger) map slots: jobs posted after this read their maps from `mapSab` */
export interface MapSlotsMsg { type: 'maps'; mapSab: SharedArrayBuffer; mapBytes: number }

export type ToImageWorker = EncodeJob | MapSlotsMsg | { type: 'threads'; id: number };

/** One thread of this process; cpuTicks = utime + stime in clock ticks (usually 10 ms). */
export interface ThreadInfo { tid: number; comm: string; nice: number; cpuTicks: number }

export type FromImageWorker =
  | { type: 'ready'; tid: number | null; nice: number; uvThreadpoolSize: number }
  | { type: 'done'; slot: number; ok: true; ms: number; mapWritten: boolean }
  | { type: 'done'; slot: number; ok: false; ms: number; error: { code: string; message: string } }
  | { type: 'threads'; id: number; self: number | null; threads: ThreadInfo[] }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> };

// ------------------------------------------------------------- threads ------

const isLinux = process.platform === 'linux';

/** This thread's kernel tid, from /proc/thread-self → "<pid>/task/<tid>". */
function ownTid(): number | null {
  if (!isLinux) return null;
  try { return Number(basename(readlinkSync('/proc/thread-self'))); } catch { return null; }
}

function readThread(tid: string): ThreadInfo | null {
  try {
    const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // fields after "(comm) " start at field 3 (state); utime 14, stime 15, nice 19
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { tid: Number(tid), comm, nice: Number(f[16]), cpuTicks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // thread exited meanwhile
  }
}

export function listThreads(): ThreadInfo[] {
  if (!isLinux) return [];
  return readdirSync('/proc/self/task').map(readThread).filter((t): t is ThreadInfo => t !== null);
}

// ---------------------------------------------------------------- worker --

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('image-worker.ts must run as a worker thread');
  const data = workerData as ImageWorkerData;
  const post = (m: FromImageWorker): void => port.postMessage(m);
  const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void =>
    post(extra ? { type: 'log', level, msg, data: extra } : { type: 'log', level, msg });

  try { os.setPriority(0, data.nice); } catch (err) { log('warn', 'cannot lower the image worker priority', { err: describeError(err) }); }
  sharp.concurrency(1);
  sharp.cache(false);

  // renice libvips' threads (they inherit nice 0 from the libuv thread that creates them)
  // Scan at the start and the end of every job (~0.1 ms): libvips starts threads
  // during a job, and glib names a new thread a moment after it starts.
  const reniceLibvips = (): void => {
    if (!isLinux) return;
    let tids: string[];
    try { tids = readdirSync('/proc/self/task'); } catch { return; }
    for (const tid of tids) {
      let comm: string;
      try { comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8'); } catch { continue; }
      if (!comm.startsWith('libvips')) continue;
      const t = readThread(tid);
      if (!t || t.nice >= data.nice) continue;
      try { os.setPriority(t.tid, data.nice); } catch { /* exited meanwhile */ }
    }
  };

  const frames = Buffer.from(data.frameSab);
  // replaced (in job order) when the writer grows its map slots for a model with a larger map
  let mapBytes = data.mapBytes;
  let maps = new Float32Array(data.mapSab);
  let map8 = Buffer.alloc(Math.max(1, mapBytes >> 2));
  const madeDirs = new Set<string>();

  const writePng = async (input: Buffer, width: number, height: number, rel: string, level: number): Promise<void> => {
    const abs = join(data.dir, rel);
    const dir = dirname(abs);
    if (!madeDirs.has(dir)) { await mkdir(dir, { recursive: true }); madeDirs.add(dir); }
    const tmp = join(dir, `.tmp-${basename(abs)}`);
    try {
      // toColourspace('b-w'): without it sharp 0.35 writes a 1-channel raw input as an RGB PNG
      await sharp(input, { raw: { width, height, channels: 1 } }).toColourspace('b-w')
        .png({ compressionLevel: level }).toFile(tmp);
      await rename(tmp, abs);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  };

  const toMap8 = (slot: number, n: number): Buffer => {
    const src = maps.subarray(slot * (mapBytes >> 2), slot * (mapBytes >> 2) + n);
    let lo: number; let hi: number;
    if (data.mapRange) {
      [lo, hi] = data.mapRange;
    } else {
      lo = Infinity; hi = -Infinity;
      for (let i = 0; i < n; i++) { const v = src[i]!; if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    const k = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < n; i++) {
      const v = (src[i]! - lo) * k;
      map8[i] = v >= 255 ? 255 : v > 0 ? Math.round(v) : 0; // NaN → 0
    }
    return map8.subarray(0, n);
  };

  const encode = async (job: EncodeJob): Promise<void> => {
    const t0 = performance.now();
    try {
      reniceLibvips();
      const off = job.slot * data.slotBytes;
      await writePng(frames.subarray(off, off + job.width * job.height), job.width, job.height, job.imagePath, data.compressionLevel);
      if (job.map) {
        const n = job.map.width * job.map.height;
        await writePng(toMap8(job.slot, n), job.map.width, job.map.height, job.map.path, data.compressionLevel);
      }
      reniceLibvips(); // threads libvips started during this job
      post({ type: 'done', slot: job.slot, ok: true, ms: performance.now() - t0, mapWritten: job.map !== null });
    } catch (err) {
      post({ type: 'done', slot: job.slot, ok: false, ms: performance.now() - t0, error: describeError(err) });
    }
  };

  // one job at a time: the slots, not a queue in here, bound the work
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToImageWorker) => {
    if (msg.type === 'encode') chain = chain.then(() => encode(msg));
    else if (msg.type === 'maps') {
      chain = chain.then(() => { mapBytes = msg.mapBytes; maps = new Float32Array(msg.mapSab); map8 = Buffer.alloc(Math.max(1, mapBytes >> 2)); });
    } else post({ type: 'threads', id: msg.id, self: ownTid(), threads: listThreads() });
  });

  // warm libvips up (its first encode loads codecs and starts threads: tens of ms of CPU)
  // before the station goes live, not on the first reject
  chain = sharp(Buffer.alloc(64 * 64), { raw: { width: 64, height: 64, channels: 1 } })
    .toColourspace('b-w').png({ compressionLevel: 0 }).toBuffer()
    .then(() => reniceLibvips(), () => undefined);

  post({
    type: 'ready', tid: ownTid(), nice: os.getPriority(0),
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  });
}

main();
