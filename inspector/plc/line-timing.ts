/**
 * LineTiming: per part, when the simulated line's photo-eye fired and when the
 * station's result for that part latched into its gate, on CLOCK_MONOTONIC.
 *
 * Why this clock: `process.hrtime.bigint()` reads CLOCK_MONOTONIC on Linux,
 * which every process of the machine shares, so the simulator's times and the
 * station's (capture, inference, verdict) subtract directly. performance.now()
 * has a per-process (and per-thread) origin and must not be mixed in.
 *
 * Preallocated columns indexed by PartId modulo the capacity (a ring of the
 * newest `capacity` parts): recording a part writes two or three slots and
 * allocates nothing but the BigInt the clock returns. `ids` says which part a
 * slot holds, so a read never confuses a part with the one `capacity` earlier.
 *
 * A latch is the FIRST result for a part of this epoch that named an id the
 * photo-eye has fired (what GateWindows applies or counts late): `late` marks
 * one that came after the gate window closed. Later results for the same part
 * (duplicates) do not move its latch time.
 */

export interface LineTimingRange {
  /** CLOCK_MONOTONIC ns (decimal string: it does not fit a JSON number exactly) that the offsets below count from */
  originNs: string;
  /** PartIds of the range that the photo-eye fired, ascending */
  partIds: number[];
  /** photo-eye time of each part, ns after originNs */
  photoEyeNs: number[];
  /** latch time of each part's result, ns after originNs; null: no result latched (yet) */
  latchNs: Array<number | null>;
  /** the latched result came after the gate window */
  late: boolean[];
}

export class LineTiming {
  private readonly ids: Uint32Array;
  private readonly photoEye: BigInt64Array;
  private readonly latch: BigInt64Array;
  private readonly lateFlags: Uint8Array;
  /** results that named a part whose slot holds another part (ring overrun) or none: not latched here */
  unmatchedResults = 0;

  constructor(readonly capacity = 1 << 17) {
    this.ids = new Uint32Array(capacity);
    this.photoEye = new BigInt64Array(capacity);
    this.latch = new BigInt64Array(capacity);
    this.lateFlags = new Uint8Array(capacity);
  }

  /** The photo-eye fired part `partId` (and its trigger went to the camera) at `ns`. */
  photoEyeFired(partId: number, ns: bigint): void {
    const k = partId % this.capacity;
    this.ids[k] = partId;
    this.photoEye[k] = ns;
    this.latch[k] = 0n;
    this.lateFlags[k] = 0;
  }

  /** A result for `partId` (already checked: this epoch, an id fired) arrived at `ns`; the first one latches. */
  resultLatched(partId: number, ns: bigint, late: boolean): void {
    const k = partId % this.capacity;
    if (this.ids[k] !== partId || this.photoEye[k] === 0n) { this.unmatchedResults++; return; }
    if (this.latch[k] !== 0n) return; // a duplicate: the first result latched
    this.latch[k] = ns;
    this.lateFlags[k] = late ? 1 : 0;
  }

  /** The parts of [from, to] still held, as offsets from the first one's photo-eye time. Allocates: not for the line. */
  range(from: number, to: number): LineTimingRange {
    const out: LineTimingRange = { originNs: '0', partIds: [], photoEyeNs: [], latchNs: [], late: [] };
    let origin: bigint | null = null;
    for (let id = Math.max(1, from); id <= to; id++) {
      const k = id % this.capacity;
      if (this.ids[k] !== id || this.photoEye[k] === 0n) continue;
      origin ??= this.photoEye[k]!;
      out.partIds.push(id);
      out.photoEyeNs.push(Number(this.photoEye[k]! - origin));
      out.latchNs.push(this.latch[k] === 0n ? null : Number(this.latch[k]! - origin));
      out.late.push(this.lateFlags[k] === 1);
    }
    out.originNs = String(origin ?? 0n);
    return out;
  }
}
