/**
 * ImageWriter: frames and anomaly maps to PNG files, off the main thread,
 * through a bounded pool of preallocated SharedArrayBuffer slots.
 *
 * `offer()` never waits: with a free slot it copies the frame (and map) into
 * the slot (memcpy), posts the slot number to the image worker and returns
 * the relative path the PNG will have; with none free it counts a drop and
 * returns null. The worker frees the slot when the files are written; the
 * writer then emits 'written' (or 'failed'). The result record is never
 * affected: the caller patches image paths into the store on 'written'.
 *
 * Supervised (core/supervised-worker.ts): a worker death fails the jobs it
 * held (their slots are freed and counted failed) and the worker is respawned
 * with backoff. offer() never waits for it: while it is down a frame still
 * takes a free slot (posted to the new worker when it is ready) and, once the
 * slots are full, is dropped and counted (stats.dropped). Each death:
 * 'worker-death' ({ worker: 'images', reason, generation, deaths }); each
 * respawn ready: 'worker-ready'; counters: `supervision` (and stats.restarts,
 * the deaths followed by a restart).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger.js';
import type { Verdict } from '../core/types.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import { relayWorkerEvents, supervisionOf, type WorkerDeathEvent, type WorkerReadyEvent, type WorkerSupervision } from '../core/worker-events.js';
import type { EncodeJob, FromImageWorker, ImageWorkerData, ThreadInfo, ToImageWorker } from './image-worker.js';

export type { ThreadInfo } from './image-worker.js';

export interface ImageWriterOptions {
  /** root directory; image paths are relative to it (`images/<runId>/<verdict>/<seq>.png`) */
  dir: string;
  width: number;
  height: number;
  /** bytes per frame slot (default width*height, GRAY8) */
  slotBytes?: number;
  /** number of slots = most images in flight (default 8) */
  slots?: number;
  /** bytes per anomaly-map slot, Float32 (default 256*256*4); 0: maps are not written */
  mapBytes?: number;
  logger: Logger;
  format?: 'png';
  /** zlib level 0..9 (default 1: fast) */
  compressionLevel?: number;
  /** fixed anomaly-map scale [lo, hi] → 0..255 (default: each map's own min..max) */
  mapRange?: [number, number];
  /** nice value for the encoding threads (default 19, the lowest priority) */
  nice?: number;
  restartBackoffMs?: { initial: number; max: number };
  /** tests only: debugKill() ends the worker for real */
  testHooks?: boolean;
}

export interface ImageJob {
  seq: number;
  runId: string;
  verdict: Verdict;
  /** GRAY8, width*height bytes (width/height default to the writer's) */
  frame: Uint8Array;
  width?: number;
  height?: number;
  map?: { data: Float32Array; width: number; height: number };
}

export interface ImageWritten {
  seq: number; runId: string; imagePath: string; anomalyMapPath: string | null;
  /** encode + write time in the worker */
  ms: number;
  /** offer() → written */
  latencyMs: number;
}
export interface ImageFailed { seq: number; runId: string; imagePath: string; error: { code: string; message: string } }

export interface ImageWriterStats {
  offered: number; written: number; dropped: number; failed: number;
  inFlight: number; restarts: number; mapsSkipped: number; encodeMsTotal: number;
}

interface SlotJob { msg: EncodeJob; seq: number; runId: string; posted: boolean; t0: number }

const WORKER_URL = new URL('./image-worker.ts', import.meta.url);

const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';

/** The deterministic relative paths of a job's files. */
export function imagePathsFor(job: { seq: number; runId: string; verdict: string }): { imagePath: string; anomalyMapPath: string } {
  const base = `images/${safe(job.runId)}/${safe(job.verdict)}/${job.seq}`;
  return { imagePath: `${base}.png`, anomalyMapPath: `${base}.map.png` };
}

type Ready = Extract<FromImageWorker, { type: 'ready' }>;

export class ImageWriter extends EventEmitter<{
  written: [ImageWritten]; failed: [ImageFailed]; 'worker-death': [WorkerDeathEvent]; 'worker-ready': [WorkerReadyEvent];
}> {
  readonly stats: ImageWriterStats = {
    offered: 0, written: 0, dropped: 0, failed: 0, inFlight: 0, restarts: 0, mapsSkipped: 0, encodeMsTotal: 0,
  };
  private readonly log: Logger;
  private readonly width: number;
  private readonly height: number;
  private readonly slotBytes: number;
  /** bytes per map slot: grows (fitMaps) when a model with a larger map goes live */
  private mapBytes: number;
  private data: ImageWorkerData;
  private readonly frameView: Uint8Array;
  private mapView: Float32Array;
  private readonly free: number[];
  private readonly jobs: Array<SlotJob | null>;
  private readonly sw: SupervisedWorker<Ready>;
  /** the current worker is ready and has had the waiting jobs posted */
  private ready = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private drainWaiters: Array<() => void> = [];
  private threadQueries = new Map<number, { resolve: (r: { self: number | null; threads: ThreadInfo[] }) => void; reject: (e: Error) => void }>();
  private lastQueryId = 0;
  private readonly testHooks: boolean;
  private readonly readyInfo = { tid: null as number | null, nice: 0, uvThreadpoolSize: 4 };

  private constructor(opts: ImageWriterOptions) {
    super();
    if ((opts.format ?? 'png') !== 'png') throw new TypeError(`unsupported image format ${String(opts.format)}`);
    this.log = opts.logger.child({ mod: 'image-writer' });
    this.width = opts.width;
    this.height = opts.height;
    this.slotBytes = opts.slotBytes ?? opts.width * opts.height;
    this.mapBytes = Math.ceil((opts.mapBytes ?? 256 * 256 * 4) / 4) * 4;
    const slots = opts.slots ?? 8;
    if (!(slots >= 1) || !(this.slotBytes >= 1)) throw new RangeError('ImageWriter needs slots >= 1 and slotBytes >= 1');
    const frameSab = new SharedArrayBuffer(slots * this.slotBytes);
    const mapSab = new SharedArrayBuffer(Math.max(4, slots * this.mapBytes));
    this.frameView = new Uint8Array(frameSab);
    this.mapView = new Float32Array(mapSab);
    // touch every page now: the first copy into a fresh slot would otherwise take page faults (ms)
    this.frameView.fill(1).fill(0);
    this.mapView.fill(1).fill(0);
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.jobs = new Array<SlotJob | null>(slots).fill(null);
    this.data = {
      frameSab, mapSab, slotBytes: this.slotBytes, mapBytes: this.mapBytes, dir: opts.dir,
      compressionLevel: opts.compressionLevel ?? 1, mapRange: opts.mapRange ?? null, nice: opts.nice ?? 19,
    };
    const backoff = opts.restartBackoffMs ?? { initial: 100, max: 5000 };
    this.testHooks = opts.testHooks === true;
    this.sw = new SupervisedWorker<Ready>({
      name: 'image-writer', url: WORKER_URL,
      workerData: () => this.data, // a respawn gets the map slots as they are now
      backoff: { initialMs: backoff.initial, maxMs: backoff.max },
    });
    this.sw.on('message', (m: FromImageWorker) => this.onMessage(m));
    this.sw.on('ready', (m: Ready) => this.onReady(m));
    this.sw.on('death', (d: { reason: string }) => this.onDeath(d.reason));
    relayWorkerEvents(this.sw, 'images', this.log, (event, payload) => this.emit(event as 'worker-death', payload as WorkerDeathEvent));
  }

  /** Preallocate the slots and start the worker; rejects if the worker cannot start. */
  static async create(opts: ImageWriterOptions): Promise<ImageWriter> {
    const w = new ImageWriter(opts);
    await w.sw.start();
    return w;
  }

  /** Deaths and respawns of the image worker. */
  get supervision(): WorkerSupervision { return supervisionOf('images', this.sw); }

  /** Worker thread facts: kernel tid, nice after lowering, libuv pool size. */
  get workerInfo(): { tid: number | null; nice: number; uvThreadpoolSize: number } { return { ...this.readyInfo }; }

  /**
   * Hand a frame (and map) to the worker if a slot is free: returns the relative
   * path the PNG will have, or null (counted in stats.dropped). Never waits.
   */
  offer(job: ImageJob): string | null {
    this.stats.offered++;
    const width = job.width ?? this.width;
    const height = job.height ?? this.height;
    if (this.closing) { this.stats.dropped++; return null; }
    if (job.frame.length !== width * height || job.frame.length > this.slotBytes) {
      this.stats.failed++;
      if (this.stats.failed < 10 || this.stats.failed % 1000 === 0) {
        this.log.warn({ seq: job.seq, bytes: job.frame.length, width, height, slotBytes: this.slotBytes }, 'frame does not fit the image slot; not written');
      }
      return null;
    }
    const slot = this.free.pop();
    if (slot === undefined) { this.stats.dropped++; return null; }
    this.frameView.set(job.frame, slot * this.slotBytes);
    const paths = imagePathsFor(job);
    let map: EncodeJob['map'] = null;
    if (job.map) {
      const n = job.map.width * job.map.height;
      if (n > 0 && job.map.data.length >= n && n * 4 <= this.mapBytes) {
        this.mapView.set(job.map.data.subarray(0, n), slot * (this.mapBytes >> 2));
        map = { width: job.map.width, height: job.map.height, path: paths.anomalyMapPath };
      } else {
        this.stats.mapsSkipped++;
      }
    }
    const msg: EncodeJob = { type: 'encode', slot, width, height, imagePath: paths.imagePath, map };
    const sj: SlotJob = { msg, seq: job.seq, runId: job.runId, posted: false, t0: performance.now() };
    this.jobs[slot] = sj;
    this.stats.inFlight++;
    if (this.ready) this.post(sj);
    return paths.imagePath;
  }

  /**
   * Make every map slot hold `floats` values (the live model's map size): called when a model
   * goes live, before its first part. Slots only grow (sized for the largest map so far; each
   * write records its own width and height). Growing allocates new shared map slots: maps of
   * jobs already posted are encoded from the old ones (the worker switches after them), maps
   * of jobs not posted yet are copied across. Returns whether the slots grew.
   */
  fitMaps(floats: number): boolean {
    const bytes = Math.ceil(floats) * 4;
    if (!(bytes > this.mapBytes)) return false;
    const slots = this.jobs.length;
    const oldFloats = this.mapBytes >> 2;
    const oldView = this.mapView;
    const mapSab = new SharedArrayBuffer(slots * bytes);
    const view = new Float32Array(mapSab);
    view.fill(1).fill(0); // touch every page now, not on the next reject
    for (let slot = 0; slot < slots; slot++) {
      const sj = this.jobs[slot];
      if (!sj || sj.posted || !sj.msg.map) continue;
      const n = sj.msg.map.width * sj.msg.map.height;
      view.set(oldView.subarray(slot * oldFloats, slot * oldFloats + n), slot * (bytes >> 2));
    }
    this.mapBytes = bytes;
    this.mapView = view;
    this.data = { ...this.data, mapSab, mapBytes: bytes };
    // a running (or starting) worker switches after the jobs posted so far; a restart gets the new data
    this.sw.worker?.postMessage({ type: 'maps', mapSab, mapBytes: bytes } satisfies ToImageWorker);
    this.log.info({ mapBytes: bytes, slots }, 'anomaly-map slots grown for the live model');
    return true;
  }

  /** Bytes per anomaly-map slot now. */
  get mapSlotBytes(): number { return this.mapBytes; }

  /** Resolves when no image is in flight. */
  drain(): Promise<void> {
    if (this.stats.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Threads of this process with their nice values, as the image worker sees them (Linux). */
  threadReport(): Promise<{ self: number | null; threads: ThreadInfo[] }> {
    if (!this.ready) return Promise.reject(new Error('image worker is not running'));
    const id = ++this.lastQueryId;
    return new Promise((resolve, reject) => {
      this.threadQueries.set(id, { resolve, reject });
      this.sw.post({ type: 'threads', id } satisfies ToImageWorker);
    });
  }

  /** Wait for the images in flight, then stop the worker. Later offers are dropped. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    await this.drain();
    this.closing = true;
    this.ready = false;
    await this.sw.close();
  }

  /** @internal test hook: kill the worker as a crash would. */
  async _terminateWorkerForTest(): Promise<void> {
    await this.sw.worker?.terminate();
  }

  /** Tests only (option testHooks): end the worker for real (terminate), as a crash would; it is respawned. */
  async debugKill(): Promise<void> {
    if (!this.testHooks) throw new Error('debugKill() needs the testHooks option');
    await this.sw.worker?.terminate();
  }

  // ------------------------------------------------------------ internals --

  private post(sj: SlotJob): void {
    sj.posted = true;
    this.sw.post(sj.msg satisfies ToImageWorker);
  }

  private release(slot: number): SlotJob | null {
    const sj = this.jobs[slot] ?? null;
    if (!sj) return null;
    this.jobs[slot] = null;
    this.free.push(slot);
    this.stats.inFlight--;
    return sj;
  }

  private settle(): void {
    if (this.stats.inFlight !== 0 || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of waiters) f();
  }

  private onReady(m: Ready): void {
    if (this.closing) return;
    this.ready = true;
    Object.assign(this.readyInfo, { tid: m.tid, nice: m.nice, uvThreadpoolSize: m.uvThreadpoolSize });
    for (const sj of this.jobs) if (sj && !sj.posted) this.post(sj); // filled while it was down
  }

  private onMessage(m: FromImageWorker): void {
    switch (m.type) {
      case 'done': {
        const sj = this.release(m.slot);
        if (!sj) break;
        this.stats.encodeMsTotal += m.ms;
        if (m.ok) {
          this.stats.written++;
          this.emit('written', {
            seq: sj.seq, runId: sj.runId, imagePath: sj.msg.imagePath,
            anomalyMapPath: m.mapWritten && sj.msg.map ? sj.msg.map.path : null,
            ms: m.ms, latencyMs: performance.now() - sj.t0,
          });
        } else {
          this.stats.failed++;
          this.log.warn({ seq: sj.seq, error: m.error }, 'image not written');
          this.emit('failed', { seq: sj.seq, runId: sj.runId, imagePath: sj.msg.imagePath, error: m.error });
        }
        this.settle();
        break;
      }
      case 'threads':
        this.threadQueries.get(m.id)?.resolve({ self: m.self, threads: m.threads });
        this.threadQueries.delete(m.id);
        break;
      case 'log':
        this.log[m.level](m.data ?? {}, m.msg);
        break;
      default:
        break;
    }
  }

  /** The worker died (the supervisor respawns it): the jobs it held are lost; free their slots, count them failed. */
  private onDeath(reason: string): void {
    this.ready = false;
    for (const q of this.threadQueries.values()) q.reject(new Error(`image worker died: ${reason}`));
    this.threadQueries.clear();
    const error = { code: 'INSPECTOR_IMAGE_WORKER_DIED', message: `image worker died: ${reason}` };
    let lost = 0;
    for (let slot = 0; slot < this.jobs.length; slot++) {
      if (!this.jobs[slot]?.posted) continue;
      const sj = this.release(slot)!;
      this.stats.failed++;
      lost++;
      this.emit('failed', { seq: sj.seq, runId: sj.runId, imagePath: sj.msg.imagePath, error });
    }
    this.stats.restarts++;
    this.log.error({ reason, lost, waiting: this.stats.inFlight }, 'image worker died; its jobs failed, the worker is respawned');
    this.settle();
  }
}
