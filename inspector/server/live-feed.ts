/**
 * Main-thread side of the live feed. The part loop calls `part()` once per
 * part: it writes a few numbers into a preallocated ring (typed arrays, no
 * allocation, no postMessage). Every `flushMs` (250) a timer turns what is new
 * into one message for the server worker, with rolling stats over the last
 * `windowMs` (5 s): parts/s, reject rate, frame→verdict p50/p99. Health goes
 * every second. A frame for `/api/live/frame.jpg` is copied (one memcpy into
 * a preallocated SharedArrayBuffer the server worker reads) only when asked.
 * The model's class of the verdict (`defectClass`, as stored in
 * `results.defect_class`) is kept per slot as the reference the part loop
 * already holds (an element of the package's class list, or null): one
 * pointer store, no allocation, and the name stays the one of the package
 * that judged the part even across a model swap.
 */
import type { HealthReport } from './station-view.js';
import type { DiskStatus } from '../retention/disk-pacer.js';
import type { PlcCounters } from '../plc/plc-contract.js';

/**
 * The operator's panel (Live, like a smart camera's): disk use against the retention budget, the
 * image writer's drops, the PLC's own outcome counters, whether the station told the PLC it is
 * Ready, and the last rejects. Built on the main thread from the live objects once a second.
 */
export interface OperatorStatus {
  /** null when retention is off (nothing watches the disk) */
  disk: DiskStatus | null;
  /** the image writer: images offered, written, dropped (slots full: no image for that part), failed */
  images: { offered: number; written: number; dropped: number; failed: number };
  /** the PLC's counters as last read back (null before the first read) */
  plc: PlcCounters | null;
  /** Station.Ready as the station last wrote it */
  ready: boolean;
  /** the newest rejects, newest first */
  lastRejects: LivePart[];
}
/** What the station gives the feed for the operator's panel (lastRejects comes from the feed's own ring). */
export type OperatorSource = () => Omit<OperatorStatus, 'lastRejects'>;

export interface LivePart {
  runId: string; seq: number; verdict: 'pass' | 'reject'; code: number; score: number | null;
  frameToVerdictMs: number; modelVersion: string; imageSaved: boolean; at: number;
  /** the model's defect class of the verdict (results.defect_class): null on a pass or when the package has none */
  defectClass: string | null;
}
export interface LiveStats { partsPerSec: number; rejectRate: number | null; p50Ms: number | null; p99Ms: number | null; parts: number }
export type LiveMessage =
  | { type: 'parts'; items: LivePart[] }
  | { type: 'stats'; partsPerSec: number; rejectRate: number | null; p50Ms: number | null; p99Ms: number | null; parts: number }
  | { type: 'health'; report: HealthReport }
  | { type: 'operator'; status: OperatorStatus };
export interface LiveFrameInfo { seq: number; width: number; height: number; at: number }

/** What the part loop calls (inspector/station/part-loop.ts). */
export interface PartFeed {
  part(seq: number, verdict: 'pass' | 'reject', code: number, score: number, frameToVerdictMs: number,
    modelVersion: string, imageSaved: boolean, frame: Uint8Array, defectClass?: string | null): void;
}

const CAP = 1024;

export class LiveFeed implements PartFeed {
  private readonly seq = new Float64Array(CAP);
  private readonly at = new Float64Array(CAP);
  private readonly score = new Float64Array(CAP);
  private readonly ms = new Float64Array(CAP);
  private readonly code = new Uint8Array(CAP);
  private readonly flags = new Uint8Array(CAP); // bit0 reject, bit1 image saved
  private readonly version: string[] = new Array<string>(CAP).fill('');
  /** references into the live package's class list (or null): never a new string */
  private readonly defectClass: Array<string | null> = new Array<string | null>(CAP).fill(null);
  private n = 0;
  private flushedN = 0;
  private readonly frameView: Uint8Array;
  private frameWaiters: Array<(f: LiveFrameInfo) => void> = [];
  private timers: NodeJS.Timeout[] = [];
  /** set by the station once the server runs (station.ts): the operator's panel, posted with health */
  operator: OperatorSource | null = null;

  constructor(
    private readonly runId: string,
    /** shared with the server worker; one frame (W*H GRAY8) */
    readonly frameBuffer: SharedArrayBuffer,
    private readonly frameSize: { width: number; height: number },
  ) {
    this.frameView = new Uint8Array(frameBuffer);
  }

  static allocate(runId: string, width: number, height: number): LiveFeed {
    return new LiveFeed(runId, new SharedArrayBuffer(width * height), { width, height });
  }

  part(seq: number, verdict: 'pass' | 'reject', code: number, score: number, frameToVerdictMs: number,
    modelVersion: string, imageSaved: boolean, frame: Uint8Array, defectClass: string | null = null): void {
    const i = this.n % CAP;
    this.seq[i] = seq;
    this.at[i] = Date.now();
    this.score[i] = score;
    this.ms[i] = frameToVerdictMs;
    this.code[i] = code;
    this.flags[i] = (verdict === 'reject' ? 1 : 0) | (imageSaved ? 2 : 0);
    this.version[i] = modelVersion;
    this.defectClass[i] = defectClass;
    this.n++;
    if (this.frameWaiters.length > 0 && frame.length === this.frameView.length) {
      this.frameView.set(frame);
      const info: LiveFrameInfo = { seq, width: this.frameSize.width, height: this.frameSize.height, at: this.at[i]! };
      const w = this.frameWaiters;
      this.frameWaiters = [];
      for (const f of w) f(info);
    }
  }

  /** The next part's frame, copied into `frameBuffer`; rejects after `timeoutMs` without a part. */
  nextFrame(timeoutMs = 1000): Promise<LiveFrameInfo> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.frameWaiters = this.frameWaiters.filter((f) => f !== done);
        reject(Object.assign(new Error(`no frame within ${timeoutMs} ms (camera stopped?)`), { code: 'INSPECTOR_NO_FRAME', statusCode: 503 }));
      }, timeoutMs);
      const done = (f: LiveFrameInfo) => { clearTimeout(t); resolve(f); };
      this.frameWaiters.push(done);
    });
  }

  /** Parts since the last call (newest `max`), oldest first. */
  drainParts(max = 64): LivePart[] {
    const from = Math.max(this.flushedN, this.n - Math.min(max, CAP));
    const items: LivePart[] = [];
    for (let k = from; k < this.n; k++) {
      const i = k % CAP;
      items.push({
        runId: this.runId, seq: this.seq[i]!, verdict: this.flags[i]! & 1 ? 'reject' : 'pass', code: this.code[i]!,
        score: Number.isFinite(this.score[i]!) ? this.score[i]! : null, frameToVerdictMs: this.ms[i]!,
        modelVersion: this.version[i]!, imageSaved: (this.flags[i]! & 2) !== 0, at: this.at[i]!,
        defectClass: this.defectClass[i] ?? null,
      });
    }
    this.flushedN = this.n;
    return items;
  }

  /** The newest `max` rejects still in the ring, newest first (read once a second, off the hot path). */
  lastRejects(max = 8): LivePart[] {
    const out: LivePart[] = [];
    for (let k = this.n - 1; k >= Math.max(0, this.n - CAP) && out.length < max; k--) {
      const i = k % CAP;
      if (!(this.flags[i]! & 1)) continue;
      out.push({
        runId: this.runId, seq: this.seq[i]!, verdict: 'reject', code: this.code[i]!,
        score: Number.isFinite(this.score[i]!) ? this.score[i]! : null, frameToVerdictMs: this.ms[i]!,
        modelVersion: this.version[i]!, imageSaved: (this.flags[i]! & 2) !== 0, at: this.at[i]!, defectClass: this.defectClass[i] ?? null,
      });
    }
    return out;
  }

  /** Rolling figures over the parts of the last `windowMs`. */
  stats(windowMs = 5000): LiveStats {
    const now = Date.now();
    const ms: number[] = [];
    let rejects = 0;
    for (let k = this.n - 1; k >= Math.max(0, this.n - CAP); k--) {
      const i = k % CAP;
      if (now - this.at[i]! > windowMs) break;
      ms.push(this.ms[i]!);
      if (this.flags[i]! & 1) rejects++;
    }
    ms.sort((a, b) => a - b);
    const at = (q: number) => (ms.length ? ms[Math.max(1, Math.ceil(q * ms.length)) - 1]! : null);
    return { partsPerSec: ms.length / (windowMs / 1000), rejectRate: ms.length ? rejects / ms.length : null, p50Ms: at(0.5), p99Ms: at(0.99), parts: this.n };
  }

  /** Post parts+stats every `flushMs` and health every `healthMs`. */
  start(post: (m: LiveMessage) => void, health: () => HealthReport, flushMs = 250, healthMs = 1000): void {
    this.timers.push(setInterval(() => {
      const items = this.drainParts();
      if (items.length) post({ type: 'parts', items });
      post({ type: 'stats', ...this.stats() });
    }, flushMs).unref());
    this.timers.push(setInterval(() => {
      post({ type: 'health', report: health() });
      if (this.operator) post({ type: 'operator', status: { ...this.operator(), lastRejects: this.lastRejects() } });
    }, healthMs).unref());
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
