/**
 * A ring of frame slots in one SharedArrayBuffer, shared by the capture
 * worker (writer) and the main thread (reader). No per-frame allocation
 * reaches the main thread's heap: frames are copied into a free slot in the
 * capture worker, and the main thread hands the slot back when done.
 *
 * Slot states live in an Int32Array (Atomics): FREE → (worker fills) FILLED →
 * (main releases) FREE. Counters the worker keeps for the main thread to read
 * live in a second Int32Array.
 */
export const SLOT_FREE = 0;
export const SLOT_FILLED = 1;

/** Indices of the shared counters (RING_FULL_DROPS: frames the worker dropped: ring full, or a triggered part the camera could not take). */
export const Counter = { FRAMES: 0, RING_FULL_DROPS: 1, RESTARTS: 2, ERRORS: 3, LAST_SEQ: 4 } as const;
const COUNTERS = 5;

export interface FrameRingBuffers {
  frames: SharedArrayBuffer;
  states: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
}

export class FrameRing {
  readonly states: Int32Array;
  readonly counters: Int32Array;
  /** one view per slot, made once */
  readonly views: Uint8Array[];

  constructor(readonly buffers: FrameRingBuffers) {
    this.states = new Int32Array(buffers.states);
    this.counters = new Int32Array(buffers.counters);
    this.views = Array.from({ length: buffers.slots }, (_, i) =>
      new Uint8Array(buffers.frames, i * buffers.slotBytes, buffers.slotBytes));
  }

  static allocate(slots: number, slotBytes: number): FrameRing {
    return new FrameRing({
      frames: new SharedArrayBuffer(slots * slotBytes),
      states: new SharedArrayBuffer(4 * slots),
      counters: new SharedArrayBuffer(4 * COUNTERS),
      slots, slotBytes,
    });
  }

  /** Writer: claim a free slot, or -1 when every slot is in use. */
  claim(): number {
    for (let i = 0; i < this.views.length; i++) {
      if (Atomics.compareExchange(this.states, i, SLOT_FREE, SLOT_FILLED) === SLOT_FREE) return i;
    }
    return -1;
  }

  /** Reader: hand a slot back. */
  release(slot: number): void {
    Atomics.store(this.states, slot, SLOT_FREE);
  }

  count(c: number, by = 1): void { Atomics.add(this.counters, c, by); }
  set(c: number, v: number): void { Atomics.store(this.counters, c, v); }
  read(c: number): number { return Atomics.load(this.counters, c); }
}
