/**
 * Preallocated per-part latency samples for exact percentiles (benchmark,
 * health). A ring of Float64Array: recording allocates nothing.
 */
export class LatencyRecorder {
  private readonly buf: Float64Array;
  private n = 0;

  constructor(capacity = 1 << 20) {
    this.buf = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.buf[this.n % this.buf.length] = ms;
    this.n++;
  }

  get count(): number { return Math.min(this.n, this.buf.length); }

  /** Percentiles over the kept samples (nearest-rank). Allocates: not for the hot path. */
  summary(): { p50: number; p99: number; max: number; count: number } {
    const k = this.count;
    if (k === 0) return { p50: NaN, p99: NaN, max: NaN, count: 0 };
    const sorted = this.buf.slice(0, k).sort();
    const at = (q: number) => sorted[Math.min(k - 1, Math.max(0, Math.ceil(q * k) - 1))]!;
    return { p50: at(0.5), p99: at(0.99), max: sorted[k - 1]!, count: k };
  }

  reset(): void { this.n = 0; }
}

