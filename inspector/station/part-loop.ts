/**
 * The hot path: frame → inference → verdict → PLC write.
 *
 * One frame is in inference at a time; while it runs, the capture mailbox
 * holds the newest frame (latest wins, drops counted). Everything after the
 * verdict is fire-and-forget: the PLC write is not awaited, the result record
 * goes to the store worker, the image to the bounded image queue.
 */
import type { Frame, ResultRecord } from '../core/types.js';
import type { ResultPatch } from '../results/result-store.js';
import { describeError } from '../core/errors.js';
import { decide, shouldSaveImage } from './verdict.js';
import { LatencyRecorder } from './latency-recorder.js';
import type { StationMetrics } from './metrics.js';
import { Alarm, type Alarms } from './alarms.js';

/** What the loop needs of its collaborators: the narrowest interfaces. */
export interface LoopInference {
  infer(frame: Uint8Array, ringSlot?: number): Promise<{ score: number; inferenceMs: number; map: Float32Array; mapWidth: number; mapHeight: number }>;
  readonly threshold: number;
  readonly modelName: string;
  readonly modelVersion: string;
  readonly provider: string;
}
export interface LoopPlc {
  writeResult(partId: number, pass: boolean, code: number, score: number): Promise<number>;
}
export interface LoopStore {
  add(record: ResultRecord & { runId: string }): void;
  update(seq: number, runId: string, patch: ResultPatch): void;
}
export interface LoopImages {
  offer(job: { seq: number; runId: string; frame: Uint8Array; map?: { data: Float32Array; width: number; height: number }; verdict: 'pass' | 'reject' }): string | null;
}

export interface LoopOptions {
  runId: string;
  budgetMs: number;
  saveImages: 'all' | 'rejects' | 'none';
  passSampleEvery: number;
  doubtMargin: number;
}

/** Exact per-part samples, kept for the benchmark and health. */
export class LoopRecorders {
  readonly dispatch = new LatencyRecorder();
  readonly inference = new LatencyRecorder();
  readonly frameToVerdict = new LatencyRecorder();
  readonly plcWrite = new LatencyRecorder();
  parts = 0;
  plcAcked = 0;
  plcFailed = 0;
  overBudget = 0;
  inferenceErrors = 0;
}

const NS_PER_MS = 1_000_000;

export class PartLoop {
  readonly rec = new LoopRecorders();
  private inFlightWrites = 0;
  private settledWaiters: Array<() => void> = [];

  constructor(
    private readonly inference: LoopInference,
    private readonly plc: LoopPlc,
    private readonly store: LoopStore,
    private readonly images: LoopImages,
    private readonly metrics: StationMetrics,
    private readonly alarms: Alarms,
    private readonly opts: LoopOptions,
  ) {}

  /** Consume frames until the source ends. */
  async run(frames: AsyncIterable<Frame>): Promise<void> {
    for await (const frame of frames) await this.process(frame);
  }

  /** Resolves once every PLC write issued so far has settled. */
  async drain(): Promise<void> {
    if (this.inFlightWrites === 0) return;
    await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
  }

  private async process(frame: Frame): Promise<void> {
    const { seq, capturedNs } = frame;
    const dispatchMs = Number(process.hrtime.bigint() - capturedNs) / NS_PER_MS;
    let score = Number.NaN;
    let inferenceMs = Number.NaN;
    let map: { data: Float32Array; width: number; height: number } | undefined;
    try {
      const r = await this.inference.infer(frame.data, frame.slot);
      score = r.score;
      inferenceMs = r.inferenceMs;
      map = { data: r.map, width: r.mapWidth, height: r.mapHeight };
      if (this.alarms.isRaised(Alarm.MODEL_DOWN)) this.alarms.set(Alarm.MODEL_DOWN, false);
    } catch (err) {
      this.rec.inferenceErrors++;
      const e = describeError(err);
      this.alarms.set(Alarm.MODEL_DOWN, true, `${e.code}: ${e.message}`);
    }
    const decision = decide(score, this.inference.threshold);
    const frameToVerdictMs = Number(process.hrtime.bigint() - capturedNs) / NS_PER_MS;

    // 1. the PLC first: nothing else may delay the write request
    this.inFlightWrites++;
    this.plc.writeResult(seq, decision.verdict === 'pass', decision.code, Number.isFinite(score) ? score : 1)
      .then((ms) => this.onPlcSettled(seq, ms, true), () => this.onPlcSettled(seq, null, false));

    // 2. the record, never dropped
    const overBudget = frameToVerdictMs > this.opts.budgetMs;
    const { runId } = this.opts;
    this.store.add({
      runId, seq, capturedAtMs: Date.now() - frameToVerdictMs, verdict: decision.verdict, code: decision.code,
      score, modelName: this.inference.modelName, modelVersion: this.inference.modelVersion, provider: this.inference.provider,
      timings: { dispatchMs, inferenceMs, frameToVerdictMs, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: frame.sourceRef ?? null, imagePath: null, anomalyMapPath: null,
    });

    // 3. the image, bounded: a full queue drops the image (counted), never the result
    if (shouldSaveImage(this.opts.saveImages, decision.verdict, score, this.inference.threshold,
      seq, this.opts.passSampleEvery, this.opts.doubtMargin)) {
      this.images.offer({ seq, runId, frame: frame.data, map, verdict: decision.verdict });
    }
    frame.release?.(); // inference and the image writer copied what they need

    // 4. counting
    const r = this.rec;
    r.parts++;
    r.dispatch.record(dispatchMs);
    r.frameToVerdict.record(frameToVerdictMs);
    if (Number.isFinite(inferenceMs)) { r.inference.record(inferenceMs); this.metrics.observeStage('inference', inferenceMs); }
    if (overBudget) r.overBudget++;
    this.metrics.observeStage('dispatch', dispatchMs);
    this.metrics.observeStage('frame_to_verdict', frameToVerdictMs);
    this.metrics.countPart(decision.verdict, decision.code, overBudget);
  }

  private onPlcSettled(seq: number, ms: number | null, ok: boolean): void {
    if (ok && ms !== null) {
      this.rec.plcAcked++;
      this.rec.plcWrite.record(ms);
      this.metrics.observeStage('plc_write', ms);
      this.store.update(seq, this.opts.runId, { plcWriteMs: ms, plcStatus: 'acked' });
    } else {
      this.rec.plcFailed++;
      this.store.update(seq, this.opts.runId, { plcStatus: 'failed' });
    }
    if (--this.inFlightWrites === 0 && this.settledWaiters.length > 0) {
      const w = this.settledWaiters;
      this.settledWaiters = [];
      for (const f of w) f();
    }
  }
}
