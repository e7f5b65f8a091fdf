/**
 * The line rehearsal: before Station.Ready, frames go the whole way a part's frame goes in the
 * station (camera pipeline → capture worker → ring → main thread → inference worker → decision
 * rule), one at a time, so that the first real parts do not pay for cold code and first-use
 * memory on every thread they cross.
 *
 * Why: the camera path alone was primed already (capture/triggered-feed.ts), yet the benchmark's
 * per-part stamps (`--parts-csv`) still showed the first ~15 parts of every run slow where the
 * frame changes threads (to_main / to_worker 10–30 ms, against ~0.1–1 ms once warm): code the
 * main thread and the inference worker run once per part had not run yet. A part is a reject
 * unless its accept arrives in time, so a slow first part is a lost good part.
 *
 * Rehearsal frames are not parts: no row, no PLC write, no image, not counted as camera frames.
 * Only a triggered camera can rehearse (its frames come on request); the rehearsal happens
 * before Ready, so the PLC (interlocked on Ready) has sent no part yet. A frame that does not
 * come back in time ends the rehearsal (logged), never the start: the station is as ready as
 * it was without one.
 */
import type { Logger } from '../core/logger.js';
import type { Frame } from '../core/types.js';
import { decideOutput } from '../inference/decision-rule.js';
import type { LoopInference } from './part-loop-ports.js';

export interface RehearsalOptions {
  /** frames to rehearse (0: none) */
  frames: number;
  /** how long one frame may take before the rehearsal is given up (a loaded machine: generous) */
  frameTimeoutMs: number;
}

/** What the rehearsal did, for the log and the benchmark: frame → verdict of the first and last frame, the worst. */
export interface RehearsalSummary {
  frames: number;
  failed: number;
  firstMs: number;
  lastMs: number;
  maxMs: number;
  /** the rehearsal stopped early: a frame did not come back within frameTimeoutMs */
  timedOut: boolean;
}

/** The camera side: asks for one rehearsal frame (capture/capture-host.ts). */
export interface RehearsalCamera { rehearse(): void }
/** The loop side: the next rehearsal frame judged (station/part-loop.ts). */
export interface RehearsalLoop { nextRehearsal(): Promise<number> }

export const DEFAULT_REHEARSAL: RehearsalOptions = { frames: 48, frameTimeoutMs: 10_000 };

export async function rehearseLine(camera: RehearsalCamera, loop: RehearsalLoop, opts: RehearsalOptions,
  log: Logger): Promise<RehearsalSummary> {
  const s: RehearsalSummary = { frames: 0, failed: 0, firstMs: Number.NaN, lastMs: Number.NaN, maxMs: 0, timedOut: false };
  for (let i = 0; i < opts.frames; i++) {
    const judged = loop.nextRehearsal(); // listen before asking: the answer can be quick
    camera.rehearse();
    let timer: NodeJS.Timeout | undefined;
    const ms = await Promise.race([judged, new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), opts.frameTimeoutMs); })]);
    clearTimeout(timer);
    if (ms === null) { s.timedOut = true; break; }
    s.frames++;
    if (Number.isNaN(ms)) { s.failed++; continue; }
    if (Number.isNaN(s.firstMs)) s.firstMs = ms;
    s.lastMs = ms;
    s.maxMs = Math.max(s.maxMs, ms);
  }
  const round = (v: number): number => Math.round(v * 100) / 100;
  const summary = { ...s, firstMs: round(s.firstMs), lastMs: round(s.lastMs), maxMs: round(s.maxMs) };
  if (s.timedOut) log.warn(summary, 'line rehearsal: a frame did not come back in time; going Ready without the rest');
  else log.info(summary, 'line rehearsal done');
  return s;
}

/**
 * The part loop's side (part-loop.ts): a rehearsal frame goes the part's way up to its verdict
 * (the same inference call and decision rule), nothing after it: no row, no PLC write, no image.
 */
export class RehearsalJudge {
  private waiter: ((ms: number) => void) | null = null;

  async judge(inference: LoopInference, frame: Frame): Promise<void> {
    let ok = true;
    try {
      const r = await inference.infer(frame.data, frame.slot);
      decideOutput(inference, r.score, r.map, r.registration?.ok ?? true);
    } catch {
      ok = false; // the runner's own error handling reports it; the rehearsal says so in its summary
    }
    const w = this.waiter;
    this.waiter = null;
    w?.(ok ? Number(process.hrtime.bigint() - frame.capturedNs) / 1e6 : Number.NaN);
  }

  next(): Promise<number> {
    return new Promise((resolve) => { this.waiter = resolve; });
  }
}
