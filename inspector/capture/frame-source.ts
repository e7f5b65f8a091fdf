/**
 * A frame source is an async iterator of frames where the latest frames win.
 *
 * Producers call `offer(frame)`. Up to `depth` frames wait for the consumer;
 * when one more arrives, the oldest waiting frame is replaced and counted in
 * `stats.dropped`: drops are never silent. depth 1 is strict "latest frame
 * wins"; a small depth (the station uses 3) absorbs a hiccup of a few frames
 * while each part can still meet its gate window, instead of dropping parts.
 * Consumers use `for await (const frame of source)`.
 */
import type { Frame } from '../core/types.js';

export interface FrameSourceStats {
  /** frames that reached JS from the pipeline */
  frames: number;
  /** frames replaced before the consumer took them (latest frames win) */
  dropped: number;
  /** pipeline (re)starts after the first one */
  restarts: number;
  /** pipeline errors seen on the bus or as unexpected EOS */
  errors: number;
}

export type SourceState = 'starting' | 'running' | 'restarting' | 'stopped';

export class LatestFrameMailbox implements AsyncIterable<Frame> {
  readonly stats: FrameSourceStats = { frames: 0, dropped: 0, restarts: 0, errors: 0 };
  /** waiting frames, oldest first (a fixed ring: no allocation per frame) */
  private readonly queue: Array<Frame | null>;
  private head = 0;
  private size = 0;
  private waiter: ((r: IteratorResult<Frame>) => void) | null = null;
  private closed = false;

  /** `onDrop` is told of every frame replaced before the consumer took it (to free its memory). */
  constructor(private readonly onDrop?: (frame: Frame) => void, readonly depth = 1) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`mailbox depth must be a positive integer, got ${depth}`);
    this.queue = new Array<Frame | null>(depth).fill(null);
  }

  offer(frame: Frame): void {
    if (this.closed) return;
    if (frame.rehearsal !== true) this.stats.frames++; // a rehearsal frame is not a camera frame of a part
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w({ value: frame, done: false });
      return;
    }
    if (this.size === this.depth) {
      // a rehearsal frame (station/rehearsal.ts) never pushes a part's frame out: it goes itself
      if (frame.rehearsal === true) { this.onDrop?.(frame); return; }
      const oldest = this.shift()!;
      if (oldest.rehearsal !== true) this.stats.dropped++; // camera drops are parts' frames
      this.onDrop?.(oldest);
    }
    this.queue[(this.head + this.size) % this.depth] = frame;
    this.size++;
  }

  close(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = null;
    while (this.size > 0) {
      const f = this.shift()!;
      this.stats.dropped++;
      this.onDrop?.(f);
    }
    w?.({ value: undefined, done: true });
  }

  get isClosed(): boolean { return this.closed; }

  /** frames waiting for the consumer */
  get pending(): number { return this.size; }

  next(): Promise<IteratorResult<Frame>> {
    if (this.size > 0) return Promise.resolve({ value: this.shift()!, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return { next: () => this.next(), return: async () => { this.close(); return { value: undefined, done: true }; } };
  }

  private shift(): Frame | null {
    const f = this.queue[this.head] ?? null;
    this.queue[this.head] = null;
    this.head = (this.head + 1) % this.depth;
    this.size--;
    return f;
  }
}
