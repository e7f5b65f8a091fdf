/**
 * Shadow mode: a candidate ModelRunner scores every frame beside the live
 * model, without delaying it.
 *
 * The part loop offers each frame AFTER the live verdict went to the PLC and
 * the record to the store. The tap never makes the loop wait:
 *  - shadow runner still busy with an earlier frame → this frame is skipped
 *    (counted in `stats.skipped`), the loop releases the frame as usual;
 *  - otherwise the shadow worker reads the frame from the same capture-ring
 *    slot; the tap holds the slot until the shadow inference settles, then
 *    releases it (offer returns true: the loop must not release it).
 * Each shadow verdict is stored (ResultStore.addShadow → shadow_results) with
 * the live verdict beside it. A disagreement whose image the loop did not
 * queue is offered to the image writer from the slot before it is released,
 * so the agreement report can show every disagreement's image.
 * The shadow verdict comes from the candidate package's own rule (decision-rule.ts
 * `decideOutput`: threshold, per-class thresholds, minimum defect area, an
 * unregistrable frame), the rule it would run live under.
 */
import type { Frame, Verdict } from '../core/types.js';
import type { Logger } from '../core/logger.js';
import { decideOutput, type DecisionPort } from '../inference/decision-rule.js';
import type { ShadowTuple } from '../results/store-worker.js';

export interface ShadowRunner extends DecisionPort {
  infer(frame: Uint8Array, ringSlot?: number): Promise<{ score: number; inferenceMs: number; map?: Float32Array; registration?: { ok: boolean } | null }>;
  readonly busy: boolean;
  readonly modelName: string;
  readonly modelVersion: string;
}

export interface ShadowSinks {
  store: { addShadow(row: ShadowTuple): void };
  images: { offer(job: { seq: number; runId: string; frame: Uint8Array; verdict: Verdict }): string | null };
}

export interface LiveOutcome {
  runId: string;
  verdict: Verdict;
  score: number;
  modelName: string;
  modelVersion: string;
  /** the loop already queued this part's image */
  imageQueued: boolean;
}

export interface ShadowStats {
  offered: number;
  compared: number;
  skipped: number;
  errors: number;
  agree: number;
  disagree: number;
  imagesOffered: number;
}

export class ShadowTap {
  readonly stats: ShadowStats = { offered: 0, compared: 0, skipped: 0, errors: 0, agree: 0, disagree: 0, imagesOffered: 0 };
  readonly startedAt = new Date().toISOString();
  private closed = false;
  private inFlight: Promise<void> | null = null;

  constructor(readonly runner: ShadowRunner, private readonly sinks: ShadowSinks, private readonly log: Logger) {}

  /** Called by the part loop for every frame; true = the tap took the frame and will release it. */
  offer(frame: Frame, live: LiveOutcome): boolean {
    this.stats.offered++;
    if (this.closed || this.runner.busy || this.inFlight) {
      this.stats.skipped++;
      return false;
    }
    this.inFlight = this.runner.infer(frame.data, frame.slot)
      .then((r) => this.onResult(frame, live, r.score, r.inferenceMs, r.map, r.registration?.ok ?? true), (err: Error & { code?: string }) => {
        this.stats.errors++;
        this.log.warn({ seq: frame.seq, code: err.code, err: err.message }, 'shadow inference failed');
      })
      .finally(() => {
        this.inFlight = null;
        frame.release?.();
      });
    return true;
  }

  private onResult(frame: Frame, live: LiveOutcome, score: number, inferenceMs: number, values: Float32Array | undefined, registered: boolean): void {
    const { verdict } = decideOutput(this.runner, score, values, registered);
    const agree = verdict === live.verdict;
    this.stats.compared++;
    if (agree) this.stats.agree++;
    else this.stats.disagree++;
    this.sinks.store.addShadow([
      live.runId, frame.seq, this.runner.modelName, this.runner.modelVersion, score, verdict,
      live.modelName, live.modelVersion, live.score, live.verdict, agree ? 1 : 0, inferenceMs, Date.now(),
    ]);
    if (!agree && !live.imageQueued && !this.closed) {
      // the frame is still in its ring slot (released after this): keep its image for the report
      if (this.sinks.images.offer({ seq: frame.seq, runId: live.runId, frame: frame.data, verdict: live.verdict }) !== null) {
        this.stats.imagesOffered++;
      }
    }
  }

  /** Stop taking frames; resolves once the shadow inference in flight (if any) has settled. */
  async stop(): Promise<void> {
    this.closed = true;
    await this.inFlight;
  }
}
