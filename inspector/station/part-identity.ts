/**
 * Which part a frame is, in the line's numbering, and what the station said
 * about each part it answered: the one place the part loop and the outcome
 * reader (plc-outcomes.ts) agree on part identity.
 *
 * Two ways a station learns a part's id (config `camera.partIds`):
 *  - 'trigger' (default): the frame carries the (Epoch, PartId) of the line's
 *    trigger (capture/triggered-feed.ts). Exact across restarts of either side.
 *  - 'frame-count': a free-running or hardware-triggered camera with no id on
 *    its frames. The station counts frames and aligns its count with the PLC's
 *    Line.LastPartId at every (re)connect. Weaker: a frame the camera loses
 *    without the station knowing shifts the numbering until the next resync;
 *    the PLC's refusals and outcome mismatches then raise PART_SYNC. Only
 *    allowed when the config says so (config.ts).
 *
 * No allocation per part: the verdict ring is preallocated typed arrays.
 */
export type PartIdMode = 'trigger' | 'frame-count';

/** Verdicts remembered for comparison with the PLC's outcomes (a power of two). */
const RING = 8192;

export interface PartKey { epoch: number; partId: number }

export class PartIdentity {
  /** the PLC's epoch as read at the last (re)connect; null before the first */
  plcEpoch: number | null = null;
  /** frame-count mode: PartId = capture seq + offset (set at each resync; the capture seq counts drops too) */
  private offset = 0;
  private lastSeq = 0;
  /** the highest PartId accounted for (a row added: inspected or lost) in `accountedEpoch` */
  private accountedEpoch = 0;
  private accountedId = 0;
  private readonly ringIds = new Uint32Array(RING);
  private readonly ringEpochs = new Uint32Array(RING);
  /** 1 = the station said accept, 2 = reject */
  private readonly ringSaid = new Uint8Array(RING);
  /** parts with a row (inspected, lost or refused): a second one for the same part is a bug upstream */
  private readonly rowIds = new Uint32Array(RING);
  private readonly rowEpochs = new Uint32Array(RING);

  constructor(readonly mode: PartIdMode) {}

  /** The link read the PLC's line state: (re)align the frame count in frame-count mode. */
  onSync(epoch: number, lastPartId: number): void {
    const changed = this.plcEpoch !== null && this.plcEpoch !== epoch;
    this.plcEpoch = epoch;
    // the next frame is the PLC's next part; on a first connect to a fresh count this is seq
    if (this.mode === 'frame-count' && (changed || this.lastSeq === 0)) this.offset = lastPartId - this.lastSeq;
  }

  /**
   * The (Epoch, PartId) of a frame, written into `out` (the part loop passes its own preallocated
   * key: nothing allocated per frame); null when it cannot be known (no epoch read yet, or a frame
   * without a trigger id).
   */
  identify(frame: { seq: number; partId?: number; lineEpoch?: number }, out: PartKey = { epoch: 0, partId: 0 }): PartKey | null {
    if (this.mode === 'trigger') {
      if (frame.partId === undefined || frame.lineEpoch === undefined) return null;
      out.epoch = frame.lineEpoch;
      out.partId = frame.partId;
      return out;
    }
    if (frame.seq > this.lastSeq) this.lastSeq = frame.seq;
    if (this.plcEpoch === null) return null;
    out.epoch = this.plcEpoch;
    out.partId = frame.seq + this.offset;
    return out;
  }

  /** True when a part of this epoch may be sent to the PLC now (its numbering is the PLC's current one). */
  current(key: PartKey): boolean {
    return this.plcEpoch !== null && key.epoch === this.plcEpoch;
  }

  /** True when this part already has a row from this station (never send or store a part twice). */
  hasRow(key: PartKey): boolean {
    const k = key.partId & (RING - 1);
    return this.rowIds[k] === key.partId && this.rowEpochs[k] === key.epoch;
  }

  /** A row was added for this part (inspected, lost or refused). */
  accounted(key: PartKey): void {
    const k = key.partId & (RING - 1);
    this.rowIds[k] = key.partId;
    this.rowEpochs[k] = key.epoch;
    if (key.epoch !== this.accountedEpoch) { this.accountedEpoch = key.epoch; this.accountedId = key.partId; return; }
    if (key.partId > this.accountedId) this.accountedId = key.partId;
  }

  /** The highest PartId of `epoch` the station has accounted for (0: none). */
  highestAccounted(epoch: number): number {
    return epoch === this.accountedEpoch ? this.accountedId : 0;
  }

  /** Remember what was sent for a part. */
  said(key: PartKey, accept: boolean): void {
    const k = key.partId & (RING - 1);
    this.ringIds[k] = key.partId;
    this.ringEpochs[k] = key.epoch;
    this.ringSaid[k] = accept ? 1 : 2;
  }

  /** What the station sent for the part: true accept, false reject, null not sent (or forgotten). */
  whatWasSaid(key: PartKey): boolean | null {
    const k = key.partId & (RING - 1);
    if (this.ringIds[k] !== key.partId || this.ringEpochs[k] !== key.epoch) return null;
    const s = this.ringSaid[k];
    return s === 1 ? true : s === 2 ? false : null;
  }
}
