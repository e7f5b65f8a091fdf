/**
 * Rendered part pictures, bounded: `app.partRender` (app.ts) renders anomaly-map heatmaps
 * for GET /api/parts/:runId/:seq/map.
 *  - size: the route asks for at most the part's own resolution (the saved image's width,
 *    read from its PNG header; the map's own width when there is no image);
 *  - cache: what was rendered is kept (LRU, `cacheBytes`), keyed by the map file's path,
 *    modification time and size and the width, so a repeat is served without work;
 *    concurrent requests for the same picture share one render;
 *  - threads: the rendering runs in ONE worker thread at nice 10 (part-render-worker.ts),
 *    one job at a time, never in the server worker's event loop, the libuv pool or
 *    libvips' threads the line's image writer uses; at most `maxQueue` jobs wait, the
 *    next caller gets 429 INSPECTOR_RENDER_BUSY. The worker is started on the first job,
 *    unref'd while idle, started again after a death, and terminated at close.
 */
import createError from '@fastify/error';
import { open } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { spawnTsWorker } from '../../core/spawn-ts-worker.js';
import type { RenderJob, RenderReply } from './part-render-worker.js';

export const RenderBusyError = createError('INSPECTOR_RENDER_BUSY', 'Too many pictures are being rendered; try again in a moment', 429);
export const RenderUnavailableError = createError<[string]>('INSPECTOR_RENDER_UNAVAILABLE', 'The render worker is not available: %s', 503);
export const ImageUnreadableError = createError<[string, string]>('INSPECTOR_IMAGE_UNREADABLE', 'The stored picture %s cannot be read: %s', 422);
export const StoredImageMissingError = createError<[string]>('INSPECTOR_IMAGE_MISSING', 'No image for %s', 404);

/** Width and height from a PNG's IHDR (the first 24 bytes), or null if the file is not a PNG. */
export async function pngSize(path: string): Promise<{ width: number; height: number } | null> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(24);
    const { bytesRead } = await fh.read(b, 0, 24, 0);
    if (bytesRead < 24 || b.readUInt32BE(0) !== 0x89504e47 || b.toString('latin1', 12, 16) !== 'IHDR') return null;
    const width = b.readUInt32BE(16);
    const height = b.readUInt32BE(20);
    return width > 0 && height > 0 ? { width, height } : null;
  } finally { await fh.close(); }
}

export interface PartRenderStats {
  /** renders the worker did */
  renders: number;
  /** answers from the cache */
  cacheHits: number;
  /** callers that joined a render already in flight */
  shared: number;
  /** callers refused with 429 */
  busy: number;
  /** the worker's threadId (0: never started) */
  workerThreadId: number;
  /** the most jobs that ever waited or ran at once */
  maxQueued: number;
}

export class PartRenderer {
  readonly stats: PartRenderStats = { renders: 0, cacheHits: 0, shared: 0, busy: 0, workerThreadId: 0, maxQueued: 0 };
  private readonly cache = new Map<string, Buffer>();
  private cachedBytes = 0;
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void; what: string }>();
  private worker: Worker | null = null;
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: { cacheBytes?: number; maxQueue?: number; nice?: number } = {}) {}

  /** The heatmap PNG of the map file at `mapPath`, `width` pixels wide (already bounded by the caller). */
  async heatmap(key: string, mapPath: string, width: number, what: string): Promise<{ png: Buffer; cached: boolean }> {
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit); // most recent last
      this.stats.cacheHits++;
      return { png: hit, cached: true };
    }
    const running = this.inFlight.get(key);
    if (running) { this.stats.shared++; return { png: await running, cached: false }; }
    if (this.pending.size >= (this.opts.maxQueue ?? 8)) { this.stats.busy++; throw new RenderBusyError(); }
    const job = this.run({ mapPath, width }, what).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    const png = await job;
    this.remember(key, png);
    return { png, cached: false };
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    this.fail('the server is closing');
    await w?.terminate();
  }

  private remember(key: string, png: Buffer): void {
    const budget = this.opts.cacheBytes ?? 32 << 20;
    if (png.length > budget / 4) return;
    this.cache.set(key, png);
    this.cachedBytes += png.length;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= budget) break;
      this.cache.delete(k);
      this.cachedBytes -= v.length;
    }
  }

  private run(job: Omit<RenderJob, 'id'>, what: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(new RenderUnavailableError('the server is closing'));
    const w = this.theWorker();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, what });
      this.stats.maxQueued = Math.max(this.stats.maxQueued, this.pending.size);
      w.ref();
      w.postMessage({ id, ...job } satisfies RenderJob);
    });
  }

  private theWorker(): Worker {
    if (this.worker) return this.worker;
    const w = spawnTsWorker(new URL('./part-render-worker.ts', import.meta.url), { nice: this.opts.nice ?? 10 }, { name: 'part-render' });
    this.stats.workerThreadId = w.threadId;
    w.on('message', (m: RenderReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.ok) {
        this.stats.renders++;
        p.resolve(Buffer.from(m.png));
      } else {
        p.reject(m.error.code === 'INSPECTOR_IMAGE_MISSING' ? new StoredImageMissingError(p.what) : new ImageUnreadableError(p.what, m.error.message));
      }
    });
    const gone = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = null; // the next job starts a new one
      this.fail(why);
    };
    w.on('error', (err) => gone(`it failed: ${err.message}`));
    w.on('exit', (code) => gone(`it exited with code ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  private fail(why: string): void {
    for (const p of this.pending.values()) p.reject(new RenderUnavailableError(why));
    this.pending.clear();
  }
}
