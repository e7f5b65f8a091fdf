/**
 * A frame source is an async iterator of frames where the latest frame wins.
 *
 * Producers call `offer(frame)`. If the consumer has not taken the previous
 * frame yet, that frame is replaced and counted in `stats.dropped`: drops are
 * never silent. Consumers use `for await (const frame of source)`.
 */
import type { Frame } from '../core/types.js';

export interface FrameSourceStats {
  /** frames that reached JS from the pipeline */
  frames: number;
  /** frames replaced before the consumer took them (latest frame wins) */
  dropped: number;
  /** pipeline (re)starts after the first one */
  restarts: number;
  /** pipeline errors seen on the bus or as unexpected EOS */
  errors: number;
}

export type SourceState = 'starting' | 'running' | 'restarting' | 'stopped';

export class LatestFrameMailbox implements AsyncIterable<Frame> {
  readonly stats: FrameSourceStats = { frames: 0, dropped: 0, restarts: 0, errors: 0 };
  private pending: Frame | null = null;
  private waiter: ((r: IteratorResult<Frame>) => void) | null = null;
  private closed = false;

  offer(frame: Frame): void {
    if (this.closed) return;
    this.stats.frames++;
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w({ value: frame, done: false });
      return;
    }
    if (this.pending) this.stats.dropped++;
    this.pending = frame;
  }

  close(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = null;
    if (this.pending) { this.stats.dropped++; this.pending = null; }
    w?.({ value: undefined, done: true });
  }

  get isClosed(): boolean { return this.closed; }

  next(): Promise<IteratorResult<Frame>> {
    const p = this.pending;
    if (p) {
      this.pending = null;
      return Promise.resolve({ value: p, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return { next: () => this.next(), return: async () => { this.close(); return { value: undefined, done: true }; } };
  }
}
