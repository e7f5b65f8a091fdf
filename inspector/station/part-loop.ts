/**
 * The hot path: frame → inference → verdict → PLC write.
 *
 * One frame is in inference at a time; while it runs, the capture mailbox
 * holds the newest frame (latest wins, drops counted). Everything after the
 * verdict is fire-and-forget: the PLC write is not awaited, the result record
 * goes to the store worker, the image to the bounded image queue.
 *
 * Part identity is the line's (part-identity.ts): the result carries the
 * (Epoch, PartId) of the part's trigger, and a part of an epoch that is not the
 * PLC's current one is never sent (PART_SYNC). Every part gets exactly one row:
 * inspected, or not (`lost()`: dropped, camera error, stale epoch) with a reason.
 * A part whose inference misses its deadline is a reject with its own code.
 */
import type { Frame, PartReason, ResultRecord } from '../core/types.js';
import { PartIdentity, type PartKey } from './part-identity.js';
import type { LostPart } from '../capture/triggered-feed.js';
import { describeError } from '../core/errors.js';
import { ResultCode } from '../core/types.js';
import { shouldSaveImage, type Decision } from './verdict.js';
import { decideOutput, defectClassOf } from '../inference/decision-rule.js';
import { alignMap } from '../inference/letterbox-map.js';
import { LoopRecorders, type InspectionSwitch, type LoopImages, type LoopInference, type LoopOptions, type LoopPlc, type LoopShadow, type LoopStore } from './part-loop-ports.js';
import { RehearsalJudge } from './rehearsal.js';
import { wallMsAt } from '../core/wall-clock.js';
import type { StationMetrics } from './metrics.js';
import { Alarm, type Alarms } from './alarms.js';
import type { PartFeed } from '../server/live-feed.js';

export type { InspectionSwitch, LoopImages, LoopInference, LoopOptions, LoopPlc, LoopShadow, LoopStore } from './part-loop-ports.js';
export { LoopRecorders } from './part-loop-ports.js';

const NS_PER_MS = 1_000_000;

export class PartLoop implements InspectionSwitch {
  readonly rec = new LoopRecorders();
  /** off: parts are not inspected but rejected with their own code (InspectionSwitch); a plain field read once per part */
  inspecting = true;
  readonly identity: PartIdentity;
  /** the key of the part in process() (serial; a dropped frame's key is its own object) */
  private readonly frameKey: PartKey = { epoch: 0, partId: 0 };
  /** row sequence of this run: one per part, inspected or not */
  private rowSeq = 0;
  private inFlightWrites = 0;
  private settledWaiters: Array<() => void> = [];
  /** the part being processed (its inference may be in flight) */
  private current: Promise<void> | null = null;
  /** shadow model fed every frame after the live verdict; never awaited */
  shadow: LoopShadow | null = null;
  /** for the rare events of the loop (duplicate parts); set by the station */
  log: { error: (o: object, msg: string) => void } | null = null;
  /** the live feed of the HTTP server (server/live-feed.ts): a few typed-array writes per part */
  feed: PartFeed | null = null;
  /** the defect-channel map of a multi-class part, handed to the image writer (which copies it at once) */
  private readonly classMap: { data: Float32Array; width: number; height: number } = { data: new Float32Array(0), width: 0, height: 0 };
  /** a letterbox package's map resampled onto the frame (letterbox-map.ts), handed to the image writer likewise */
  private readonly alignedMap: { data: Float32Array; width: number; height: number } = { data: new Float32Array(0), width: 0, height: 0 };

  constructor(
    private inference: LoopInference,
    private readonly plc: LoopPlc,
    private readonly store: LoopStore,
    private readonly images: LoopImages,
    private readonly metrics: StationMetrics,
    private readonly alarms: Alarms,
    private readonly opts: LoopOptions,
  ) {
    this.identity = opts.identity ?? new PartIdentity('trigger');
  }

  setInspecting(on: boolean): void { this.inspecting = on; }

  /** A fresh row sequence number of this run (the outcome reader's gap rows take theirs here). */
  nextSeq(): number { return ++this.rowSeq; }

  /** Consume frames until the source ends. */
  async run(frames: AsyncIterable<Frame>): Promise<void> {
    for await (const frame of frames) {
      this.current = this.processSafely(frame);
      await this.current;
    }
  }

  /**
   * A part the station will not inspect (capture/triggered-feed.ts, the capture mailbox): its
   * row is written with the reason, and the PLC gets an explicit reject at once when the part's
   * numbering is current (else the PLC's timeout rejects it).
   */
  lost(p: LostPart | { epoch: number; partId: number; item?: number; reason: PartReason }): void {
    const key = { epoch: p.epoch, partId: p.partId };
    const reason: PartReason = p.reason;
    this.recordNotInspected(key, reason, null, Number.NaN);
  }

  /** A frame the capture mailbox dropped (newer frames pushed it out): its part gets its row. */
  droppedFrame(frame: { seq: number; partId?: number; lineEpoch?: number; sourceRef?: string }): void {
    const key = this.identity.identify(frame);
    if (key) this.recordNotInspected(key, 'dropped', frame.sourceRef ?? null, Number.NaN);
    else this.rec.partSyncErrors++;
  }

  private recordNotInspected(key: PartKey, reason: PartReason, sourceRef: string | null, score: number): void {
    if (this.twice(key, `not inspected (${reason})`)) return;
    const code = reason === 'inspection_stopped' ? ResultCode.INSPECTION_STOPPED : ResultCode.NOT_INSPECTED;
    const seq = this.nextSeq();
    const { runId } = this.opts;
    const current = this.identity.current(key);
    let plcStatus: ResultRecord['plcStatus'] = 'failed';
    if (current) {
      plcStatus = 'pending';
      this.inFlightWrites++;
      this.identity.said(key, false);
      this.plc.writeResult(key.partId, key.epoch, false, code, 1)
        .then((ms) => this.onPlcSettled(seq, ms, true), () => this.onPlcSettled(seq, null, false));
    }
    this.rec.notInspected[reason]++;
    this.store.add({
      runId, seq, capturedAtMs: Date.now(), verdict: 'reject', code, score,
      modelName: this.inference.modelName, modelVersion: this.inference.modelVersion, provider: this.inference.provider,
      timings: { dispatchMs: Number.NaN, inferenceMs: Number.NaN, frameToVerdictMs: Number.NaN, plcWriteMs: null },
      plcStatus, sourceRef, imagePath: null, anomalyMapPath: null, defectClass: null,
      lineEpoch: key.epoch, partId: key.partId, reason,
    });
    this.identity.accounted(key);
    this.metrics.countPart('reject', code, false);
  }

  /**
   * A part that already has a row is never sent or stored again: the PLC would count a
   * duplicate at best, apply the first result at worst. Counted and logged (a bug upstream).
   */
  private twice(key: PartKey, what: string): boolean {
    if (!this.identity.hasRow(key)) return false;
    this.rec.duplicateParts++;
    if (this.rec.duplicateParts <= 20) this.log?.error({ epoch: key.epoch, partId: key.partId, what }, 'a part came a second time: ignored');
    return true;
  }

  /** process() with the guarantees the line needs even when something in it throws. */
  private async processSafely(frame: Frame): Promise<void> {
    const released = { done: false };
    try {
      await this.process(frame, released);
    } catch (err) {
      // a bug after the verdict must not stop the line nor leak the ring slot; the part's row
      // and PLC result were sent before anything that can throw here (see process())
      this.rec.loopErrors++;
      this.alarms.set(Alarm.MODEL_DOWN, true, `part loop: ${describeError(err).message}`);
    } finally {
      if (!released.done) frame.release?.();
    }
  }

  /** The model the next part will use. */
  get live(): LoopInference {
    return this.inference;
  }

  /**
   * Swap the model between two parts: every part reads the model once, when it
   * starts, so the part in flight finishes on the old one. Resolves with the
   * old model once that part is done (close it then, not before).
   */
  async swapInference(next: LoopInference): Promise<LoopInference> {
    const previous = this.inference;
    this.inference = next;
    await this.current?.catch(() => undefined);
    return previous;
  }

  /** Resolves once every PLC write issued so far has settled. */
  async drain(): Promise<void> {
    if (this.inFlightWrites === 0) return;
    await new Promise<void>((resolve) => this.settledWaiters.push(resolve));
  }

  /** rehearsal frames (station/rehearsal.ts): judged up to their verdict, never parts */
  private readonly rehearsalJudge = new RehearsalJudge();

  /** Resolves when the next rehearsal frame is judged: its frame → verdict ms (NaN: its inference failed). */
  nextRehearsal(): Promise<number> { return this.rehearsalJudge.next(); }

  private async process(frame: Frame, released: { done: boolean }): Promise<void> {
    if (frame.rehearsal === true) { // released by processSafely
      await this.rehearsalJudge.judge(this.inference, frame);
      this.rec.rehearsals++;
      return;
    }
    const { capturedNs } = frame;
    const key = this.identity.identify(frame, this.frameKey); // one part in process() at a time: its key is reused
    if (key === null || !this.identity.current(key)) {
      // numbering unknown or of another epoch (the PLC restarted): never sent, never guessed
      this.rec.partSyncErrors++;
      if (key !== null) {
        this.alarms.set(Alarm.PART_SYNC, true, `part ${key.epoch}/${key.partId} is not of the PLC's epoch ${this.identity.plcEpoch ?? 'unknown'}`);
        this.recordNotInspected(key, 'stale_epoch', frame.sourceRef ?? null, Number.NaN);
      }
      return;
    }
    if (this.twice(key, 'inspected')) return;
    if (!this.inspecting) { // stopped on purpose: a fail-safe reject with its own code, no inference (the frame is released by processSafely)
      this.recordNotInspected(key, 'inspection_stopped', frame.sourceRef ?? null, Number.NaN);
      return;
    }
    const seq = this.nextSeq();
    frame.seq = seq; // the shadow and the image writer key their rows by the row's seq
    const inference = this.inference; // once per part: a swap takes effect at the next part
    const dispatchMs = Number(process.hrtime.bigint() - capturedNs) / NS_PER_MS;
    let score = Number.NaN;
    let inferenceMs = Number.NaN;
    let map: { data: Float32Array; width: number; height: number } | undefined;
    let values: Float32Array | null = null; // the raw output the per-class rule reads
    let regOk = true;
    let regMs = Number.NaN;
    let timedOut = false;
    let inferStartNs = 0n;
    let inferEndNs = 0n;
    try {
      const r = await inference.infer(frame.data, frame.slot);
      score = r.score;
      inferenceMs = r.inferenceMs;
      inferStartNs = r.startNs ?? 0n;
      inferEndNs = r.endNs ?? 0n;
      if (r.registration) { regOk = r.registration.ok; regMs = r.registration.ms; }
      map = r.mapWidth > 0 ? { data: r.map, width: r.mapWidth, height: r.mapHeight } : undefined; // classification: no map
      values = r.map;
      if (this.alarms.isRaised(Alarm.MODEL_DOWN)) this.alarms.set(Alarm.MODEL_DOWN, false);
    } catch (err) {
      const e = describeError(err);
      if (e.code === 'INSPECTOR_INFERENCE_TIMEOUT') { timedOut = true; this.rec.inferenceTimeouts++; } else this.rec.inferenceErrors++;
      this.alarms.set(Alarm.MODEL_DOWN, true, `${e.code}: ${e.message}`);
    }
    const rule = inference.classRule ?? null;
    let decision: Decision;
    let defectClass: string | null = null; // a reference into the package's class list: no allocation
    if (timedOut) decision = { verdict: 'reject', code: ResultCode.INFERENCE_TIMEOUT }; // hung or dead worker: fail-safe
    else {
      // the package's rule (decision-rule.ts decideOutput: the one the shadow, the gate and eval use):
      // unregistrable, per-class or image-score threshold, minimum defect area; shared constants, no allocation
      decision = decideOutput(inference, score, values, regOk);
      defectClass = defectClassOf(inference, decision, inference.manifest?.outputs.defectClasses);
    }
    const verdictNs = process.hrtime.bigint();
    const frameToVerdictMs = Number(verdictNs - capturedNs) / NS_PER_MS;

    // 1. the PLC first: nothing else may delay the write request
    this.inFlightWrites++;
    this.identity.said(key, decision.verdict === 'pass');
    const { epoch, partId } = key; // key is reused by the next part: the ack keeps its own copy
    const written = this.plc.writeResult(partId, epoch, decision.verdict === 'pass', decision.code, Number.isFinite(score) ? score : 1);
    this.rec.timeline.judged(epoch, partId, frame, inferStartNs, inferEndNs, verdictNs, process.hrtime.bigint());
    written.then((ms) => this.onPlcSettled(seq, ms, true, epoch, partId), () => this.onPlcSettled(seq, null, false));

    // 2. the record, never dropped
    const overBudget = frameToVerdictMs > this.opts.budgetMs;
    const { runId } = this.opts;
    this.store.add({
      runId, seq, capturedAtMs: wallMsAt(frame.capturedNs), verdict: decision.verdict, code: decision.code,
      score, modelName: inference.modelName, modelVersion: inference.modelVersion, provider: inference.provider,
      timings: { dispatchMs, inferenceMs, frameToVerdictMs, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: frame.sourceRef ?? null, imagePath: null, anomalyMapPath: null, defectClass,
      lineEpoch: key.epoch, partId: key.partId, reason: timedOut ? 'inference_timeout' : null,
    });
    this.identity.accounted(key);

    if (rule && defectClass !== null) this.metrics.countDefectClass(defectClass);

    // 3. the image, bounded: a full queue drops the image (counted), never the result
    let imageQueued = false;
    if (shouldSaveImage(this.opts.saveImages, decision.verdict, score, inference.threshold,
      seq, this.opts.passSampleEvery, this.opts.doubtMargin)) {
      if (rule && values && map) { // a multi-class map is saved as its defect channels (max per cell), not channel 0
        const m = this.classMap;
        m.data = rule.defectMap(values); m.width = map.width; m.height = map.height;
        map = m;
      }
      const index = inference.mapFrameIndex;
      if (index && map && index.length === map.width * map.height) { // letterbox: the saved map covers the frame
        const a = this.alignedMap;
        if (a.data.length !== index.length) a.data = new Float32Array(index.length); // a new model's map size: once per swap
        alignMap(map.data, index, a.data); a.width = map.width; a.height = map.height;
        map = a;
      }
      imageQueued = this.images.offer({ seq, runId, frame: frame.data, map, verdict: decision.verdict }) !== null;
    }
    this.feed?.part(seq, decision.verdict, decision.code, score, frameToVerdictMs, inference.modelVersion, imageQueued, frame.data, defectClass);
    // 3b. the shadow model (if any) reads the same ring slot; it releases the frame when it is done
    const shadowTook = this.shadow?.offer(frame, {
      runId, verdict: decision.verdict, score, modelName: inference.modelName, modelVersion: inference.modelVersion, imageQueued,
    }) === true;
    released.done = true; // from here the shadow (or this line) owns the slot
    if (!shadowTook) frame.release?.(); // inference and the image writer copied what they need

    // 4. counting
    const r = this.rec;
    r.parts++;
    r.dispatch.record(dispatchMs);
    r.frameToVerdict.record(frameToVerdictMs);
    if (Number.isFinite(inferenceMs)) { r.inference.record(inferenceMs); this.metrics.observeStage('inference', inferenceMs); }
    if (overBudget) r.overBudget++;
    if (Number.isFinite(regMs)) { r.registration.record(regMs); this.metrics.observeStage('registration', regMs); }
    if (!regOk) r.unregistrable++;
    this.metrics.observeStage('dispatch', dispatchMs);
    this.metrics.observeStage('frame_to_verdict', frameToVerdictMs);
    this.metrics.countPart(decision.verdict, decision.code, overBudget);
  }

  /** A write settled; `epoch`/`partId` for inspected parts: their ack goes into the timeline (the benchmark's plc_ack). */
  private onPlcSettled(seq: number, ms: number | null, ok: boolean, epoch?: number, partId?: number): void {
    if (ok && ms !== null) {
      if (partId !== undefined) this.rec.timeline.acknowledged(epoch!, partId, process.hrtime.bigint());
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
