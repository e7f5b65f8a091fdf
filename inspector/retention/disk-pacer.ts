/**
 * DiskPacer: when the next retention pass must run, and whether the disk is low.
 *
 * A fixed 15-minute pass let a 20 parts/s line write 13 GB between two checks:
 * the pace has to follow the write rate. Every check (a few seconds) the
 * scheduler samples the file system's free space (statfs of the images folder);
 * the pacer keeps
 *
 *  - the images' use: measured by the last pass (every file under images/ and
 *    exports/), plus what the file system lost since then. That is an upper
 *    bound (other writers on the same file system count too): it errs towards
 *    an early pass, never a late one;
 *  - the write rate: bytes/s of free space lost, smoothed (EWMA) over the checks.
 *
 * A pass is due (at most one per `minIntervalMs`) when the use projected over a
 * horizon of two checks plus the last pass's duration reaches the high-water
 * mark (`highWaterRatio` x budget), when the free space projected over the same
 * horizon falls under `freeFloorBytes` while retention has images to delete,
 * before the first measurement (after `minIntervalMs`), and at the latest every
 * `maxIntervalMs`. A pass deletes down to the low-water mark, so the next one
 * is again a while away.
 *
 * DISK_LOW (`low`) is raised at the high-water mark or under the free-space
 * floor and cleared only under `clearRatio` x budget with 10 % above the floor:
 * hysteresis, so a use hovering at the mark does not flap the alarm.
 * No timers, no I/O here: the scheduler (retention-scheduler.ts) feeds it.
 */

export interface DiskPacerConfig {
  budgetBytes: number;
  highWaterRatio: number;
  clearRatio: number;
  lowWaterRatio: number;
  freeFloorBytes: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  checkIntervalMs: number;
}

/** What Live, /metrics and the DISK_LOW alarm show. */
export interface DiskStatus {
  /** bytes of images and exports: measured by the last pass plus the growth since (null before the first pass) */
  imagesBytes: number | null;
  budgetBytes: number;
  highWaterBytes: number;
  /** a pass deletes down to this */
  lowWaterBytes: number;
  /** free and total bytes of the images' file system (null before the first sample) */
  freeBytes: number | null;
  totalBytes: number | null;
  freeFloorBytes: number;
  /** bytes/s the file system is filling at (smoothed; 0 when it is not) */
  writeBytesPerSec: number;
  /** DISK_LOW: raised at the high-water mark or under the floor, cleared with hysteresis */
  low: boolean;
  lowReason: 'budget' | 'free-space' | null;
  /** when the last pass finished (ms since the epoch; null: none yet) */
  lastPassAt: number | null;
  /** the pacer's estimate of the time to the next pass, ms (null: unknown) */
  nextPassInMs: number | null;
}

/** DISK_LOW's detail: what is low and by how much. */
export function diskLowDetail(d: DiskStatus): string {
  const gib = (b: number | null) => (b === null ? '?' : `${(b / 1024 ** 3).toFixed(2)} GiB`);
  if (d.lowReason === 'free-space') return `free space ${gib(d.freeBytes)} under the floor of ${gib(d.freeFloorBytes)}`;
  const pct = d.imagesBytes === null || d.budgetBytes === 0 ? '?' : `${Math.round((100 * d.imagesBytes) / d.budgetBytes)} %`;
  return `images use ${gib(d.imagesBytes)} of the ${gib(d.budgetBytes)} budget (${pct}), writing ${(d.writeBytesPerSec / 1024 ** 2).toFixed(1)} MiB/s`;
}

const RATE_ALPHA = 0.3;

export class DiskPacer {
  private measured: number | null = null;
  /** free bytes sampled right after the last pass: the growth since is measured against it */
  private freeAtMeasure: number | null = null;
  private free: number | null = null;
  private total: number | null = null;
  private lastSampleAt: number | null = null;
  private rate = 0;
  private low = false;
  private lowReason: DiskStatus['lowReason'] = null;
  private lastPassStart: number | null = null;
  private lastPassEnd: number | null = null;
  private lastPassMs = 0;

  constructor(private readonly cfg: DiskPacerConfig, private readonly startedAt: number) {}

  get highWaterBytes(): number { return Math.floor(this.cfg.budgetBytes * this.cfg.highWaterRatio); }
  get lowWaterBytes(): number { return Math.floor(this.cfg.budgetBytes * this.cfg.lowWaterRatio); }

  /** A statfs sample of the images' file system. */
  onSample(freeBytes: number, totalBytes: number, now: number): void {
    if (this.free !== null && this.lastSampleAt !== null && now > this.lastSampleAt) {
      const bps = Math.max(0, (this.free - freeBytes) / ((now - this.lastSampleAt) / 1000));
      this.rate = this.rate === 0 ? bps : RATE_ALPHA * bps + (1 - RATE_ALPHA) * this.rate;
    }
    this.free = freeBytes;
    this.total = totalBytes;
    this.lastSampleAt = now;
    this.freeAtMeasure ??= this.measured !== null ? freeBytes : null;
    this.updateLow();
  }

  onPassStart(now: number): void { this.lastPassStart = now; }

  /** A pass measured the images' use (after its deletions); `freeBytes`: a statfs sample right after it. */
  onPassDone(usageBytes: number, freeBytes: number | null, now: number): void {
    this.measured = usageBytes;
    this.freeAtMeasure = freeBytes;
    if (freeBytes !== null) this.free = freeBytes;
    this.lastPassEnd = now;
    if (this.lastPassStart !== null) this.lastPassMs = now - this.lastPassStart;
    this.updateLow();
  }

  /** A pass that failed still counts for the minimum interval (no retry storm). */
  onPassFailed(now: number): void { this.lastPassEnd = now; }

  /** The images' use now: the last measurement plus what the file system lost since (an upper bound). */
  imagesBytes(): number | null {
    if (this.measured === null) return null;
    const grown = this.freeAtMeasure !== null && this.free !== null ? Math.max(0, this.freeAtMeasure - this.free) : 0;
    return this.measured + grown;
  }

  /** The time over which a pass started now must keep the disk from filling: two checks and a pass. */
  private horizonS(): number { return (2 * this.cfg.checkIntervalMs + this.lastPassMs) / 1000; }

  due(now: number): boolean {
    const since = this.lastPassStart === null ? now - this.startedAt : now - this.lastPassStart;
    if (since < this.cfg.minIntervalMs) return false;
    if (this.measured === null) return true; // nothing known yet: measure
    if (since >= this.cfg.maxIntervalMs) return true;
    const use = this.imagesBytes() ?? 0;
    const grow = this.rate * this.horizonS();
    if (use + grow >= this.highWaterBytes) return true;
    return this.free !== null && this.free - grow < this.cfg.freeFloorBytes && use > this.lowWaterBytes;
  }

  status(now: number): DiskStatus {
    return {
      imagesBytes: this.imagesBytes(), budgetBytes: this.cfg.budgetBytes, highWaterBytes: this.highWaterBytes,
      lowWaterBytes: this.lowWaterBytes, freeBytes: this.free, totalBytes: this.total, freeFloorBytes: this.cfg.freeFloorBytes,
      writeBytesPerSec: this.rate, low: this.low, lowReason: this.lowReason, lastPassAt: this.lastPassEnd,
      nextPassInMs: this.nextPassInMs(now),
    };
  }

  private nextPassInMs(now: number): number | null {
    const since = this.lastPassStart === null ? now - this.startedAt : now - this.lastPassStart;
    const minWait = Math.max(0, this.cfg.minIntervalMs - since);
    if (this.measured === null) return minWait;
    let wait = Math.max(0, this.cfg.maxIntervalMs - since);
    if (this.rate > 0) {
      const toHigh = ((this.highWaterBytes - (this.imagesBytes() ?? 0)) / this.rate - this.horizonS()) * 1000;
      wait = Math.min(wait, Math.max(0, toHigh));
    }
    return Math.round(Math.max(minWait, wait));
  }

  private updateLow(): void {
    const use = this.imagesBytes();
    const floor = this.cfg.freeFloorBytes;
    const overHigh = use !== null && use >= this.highWaterBytes;
    const underFloor = this.free !== null && this.free < floor;
    if (overHigh || underFloor) {
      this.low = true;
      this.lowReason = underFloor ? 'free-space' : 'budget';
      return;
    }
    if (!this.low) return;
    const belowClear = use === null || use < this.cfg.budgetBytes * this.cfg.clearRatio;
    const aboveFloor = this.free === null || this.free >= floor * 1.1;
    if (belowClear && aboveFloor) { this.low = false; this.lowReason = null; }
  }
}
