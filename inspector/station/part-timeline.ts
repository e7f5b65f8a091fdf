/**
 * PartTimeline: the station's instants of each inspected part, on
 * CLOCK_MONOTONIC (`process.hrtime.bigint()`), the clock the PLC simulator's
 * LineTiming uses in its own process (plc/line-timing.ts): the benchmark
 * lines both up per part into photo-eye → latched-at-the-PLC and its stages.
 *
 *   triggered    the capture worker handled the part's trigger telegram (0n: a free-running camera)
 *   captured     the frame reached host memory (the capture worker's appsink callback)
 *   delivered    the main thread took the frame from the capture worker (0n: not recorded)
 *   inferStart   the inference worker started on it (binning first)
 *   inferEnd     its session.run returned (the worker's whole job done)
 *   verdict      the main thread decided (the PLC write is issued right after)
 *   writeIssued  writeResult() returned (node-opcua builds, encodes, signs/encrypts and writes the
 *                request inside it: the PLC may have latched it already)
 *   plcDone      the PLC acknowledged the write (after the latch: not on the headline path)
 *
 * Preallocated columns indexed by PartId modulo the capacity (the newest
 * `capacity` parts); `ids`/`epochs` say which part a slot holds. Recording
 * writes a few slots and allocates nothing.
 */
import type { Frame } from '../core/types.js';

/** The frame's own stamps (core/types.ts Frame). */
export type FrameInstants = Pick<Frame, 'triggeredNs' | 'capturedNs' | 'deliveredNs'>;

export interface PartInstants {
  triggered: bigint;
  captured: bigint;
  delivered: bigint;
  inferStart: bigint;
  inferEnd: bigint;
  verdict: bigint;
  writeIssued: bigint;
  /** 0n: not acknowledged (yet) */
  plcDone: bigint;
}

export class PartTimeline {
  private readonly ids: Uint32Array;
  private readonly epochs: Uint32Array;
  private readonly triggered: BigInt64Array;
  private readonly captured: BigInt64Array;
  private readonly delivered: BigInt64Array;
  private readonly inferStart: BigInt64Array;
  private readonly inferEnd: BigInt64Array;
  private readonly verdict: BigInt64Array;
  private readonly writeIssued: BigInt64Array;
  private readonly plcDone: BigInt64Array;

  constructor(readonly capacity = 1 << 16) {
    this.ids = new Uint32Array(capacity);
    this.epochs = new Uint32Array(capacity);
    this.triggered = new BigInt64Array(capacity);
    this.captured = new BigInt64Array(capacity);
    this.delivered = new BigInt64Array(capacity);
    this.inferStart = new BigInt64Array(capacity);
    this.inferEnd = new BigInt64Array(capacity);
    this.verdict = new BigInt64Array(capacity);
    this.writeIssued = new BigInt64Array(capacity);
    this.plcDone = new BigInt64Array(capacity);
  }

  /** A part judged and its result sent: its frame's instants, then its own up to the write (inference instants 0n when it had none). */
  judged(epoch: number, partId: number, frame: FrameInstants, inferStart: bigint, inferEnd: bigint, verdict: bigint, writeIssued: bigint): void {
    const k = partId % this.capacity;
    this.ids[k] = partId;
    this.epochs[k] = epoch;
    this.triggered[k] = frame.triggeredNs ?? 0n;
    this.captured[k] = frame.capturedNs;
    this.delivered[k] = frame.deliveredNs ?? 0n;
    this.inferStart[k] = inferStart;
    this.inferEnd[k] = inferEnd;
    this.verdict[k] = verdict;
    this.writeIssued[k] = writeIssued;
    this.plcDone[k] = 0n;
  }

  /** The PLC acknowledged the write of this part's result. */
  acknowledged(epoch: number, partId: number, ns: bigint): void {
    const k = partId % this.capacity;
    if (this.ids[k] === partId && this.epochs[k] === epoch) this.plcDone[k] = ns;
  }

  /** The instants of one part, or null when it is not held (not judged, or overwritten). Allocates: after the run. */
  get(epoch: number, partId: number): PartInstants | null {
    const k = partId % this.capacity;
    if (this.ids[k] !== partId || this.epochs[k] !== epoch || this.verdict[k] === 0n) return null;
    return { triggered: this.triggered[k]!, captured: this.captured[k]!, delivered: this.delivered[k]!, inferStart: this.inferStart[k]!, inferEnd: this.inferEnd[k]!,
      verdict: this.verdict[k]!, writeIssued: this.writeIssued[k]!, plcDone: this.plcDone[k]! };
  }
}
