/**
 * Bare timing on real frames, interleaved with the line (the benchmark turns it on; the station
 * leaves it off). Every n-th judged part's frame is copied once its answer is posted (its ring
 * slot goes back to the camera) and prepared + run again `delayMs` later: the benchmark puts that
 * between two parts, when the main thread's post-verdict work is done, so the figure is the
 * compute alone, not its contention with that work. A part in flight when the timer fires is
 * never disturbed (the bare run waits for the next sample), and a part that arrives during a bare
 * run waits for it (`settled()`): both share one session, one set of feeds and fetches.
 * Runs in the inference worker (inference-worker.ts).
 */
const CAPACITY = 1 << 14;

export class BareTimer {
  private readonly run = new Float64Array(CAPACITY);
  private readonly withPrep = new Float64Array(CAPACITY);
  private frame: Uint8Array | null = null; // allocated once, when the benchmark turns bare timing on
  private count = 0;
  private every = 0;
  private delayMs = 0;
  private judged = 0;
  /** a part is being judged: the session is its */
  private inferring = false;
  private running: Promise<void> | null = null;
  private readonly later = (): void => { void this.again().catch(() => undefined); };

  constructor(
    private readonly frameBytes: number,
    /** prepares a frame into the session's feeds (binning, registration, lens table) */
    private readonly load: (frame: Uint8Array) => void,
    /** session.run on the prepared feeds */
    private readonly runSession: () => Promise<unknown>,
  ) {}

  /** every n-th part (0: off), `delayMs` after its answer */
  configure(n: number, delayMs: number): void {
    this.every = Math.max(0, Math.floor(n));
    this.delayMs = Math.max(0, delayMs);
    if (this.every > 0) this.frame ??= new Uint8Array(this.frameBytes);
  }

  /**
   * A part starts. Synchronous, nothing allocated when bare timing is off: a promise to await only
   * while a bare run holds the session.
   */
  starting(): Promise<void> | null {
    this.inferring = true;
    return this.running ? this.running.catch(() => undefined) : null;
  }

  /**
   * The part's answer is posted: `frame` (still readable) is kept when its turn has come. Synchronous
   * (null) unless the bare run is due at once (delayMs 0): then a promise to await.
   */
  judgedPart(frame: Uint8Array | null, runAgain: boolean): Promise<void> | null {
    this.inferring = false;
    if (this.every === 0 || !runAgain || ++this.judged % this.every !== 0 || !frame || !this.frame) return null;
    this.frame.set(frame);
    if (this.delayMs > 0) { setTimeout(this.later, this.delayMs); return null; }
    return this.again().catch(() => undefined);
  }

  /** A part failed: the session is free again. */
  failed(): void { this.inferring = false; }

  /** The samples so far: session.run alone, and preprocessing + session.run (ms). */
  samples(): { run: number[]; withPreprocess: number[] } {
    const n = Math.min(this.count, CAPACITY);
    return { run: Array.from(this.run.subarray(0, n)), withPreprocess: Array.from(this.withPrep.subarray(0, n)) };
  }

  private async again(): Promise<void> {
    if (this.inferring || this.running || !this.frame) return;
    const s = performance.now();
    this.load(this.frame);
    const r = performance.now();
    this.running = this.runSession().then(() => undefined);
    try { await this.running; } finally { this.running = null; }
    const e = performance.now();
    const k = this.count++ % CAPACITY;
    this.run[k] = e - r;
    this.withPrep[k] = e - s;
  }
}
