/**
 * The part loop's ports (part-loop.ts): the narrow interfaces it is given instead of the
 * station's objects (inference, PLC, store, shadow, images, the inspection switch), its
 * options, and the recorders it fills for the benchmark and health. Kept apart from the loop
 * so that the station, the registry and the tests depend on these shapes, not on the loop.
 */
import type { Frame, PartReason, ResultRecord } from '../core/types.js';
import type { PartIdentity } from './part-identity.js';
import type { ResultPatch } from '../results/result-store.js';
import type { ClassDecision } from '../inference/decision-rule.js';
import { LatencyRecorder } from './latency-recorder.js';
import { PartTimeline } from './part-timeline.js';

/** What the loop needs of its collaborators: the narrowest interfaces. */
export interface LoopInference {
  infer(frame: Uint8Array, ringSlot?: number): Promise<{ score: number; inferenceMs: number; map: Float32Array; mapWidth: number; mapHeight: number;
    /** the worker's job, CLOCK_MONOTONIC ns (model-runner.ts); absent: not recorded in the timeline */
    startNs?: bigint; endNs?: bigint;
    /** packages with a manifest `registration`: ok=false makes the part an UNREGISTRABLE reject */
    registration?: { ok: boolean; ms: number } | null }>;
  readonly threshold: number;
  /** manifest decision.minDefectAreaPx, and frame pixels per map cell (NaN: no single-channel map) */
  readonly minDefectAreaPx?: number;
  readonly mapCellAreaPx?: number;
  /** letterbox packages: where each cell of a map over the frame lies in the model's map (the saved map is resampled) */
  readonly mapFrameIndex?: Int32Array | null;
  /** multi-class outputs: the per-class rule over the result's `map` (K channels / K probabilities) */
  readonly classRule?: ClassDecision | null;
  /** the package's defect classes: a one-class package's DEFECT reject is stored with that class */
  readonly manifest?: { readonly outputs: { readonly defectClasses: readonly string[] } };
  readonly modelName: string;
  readonly modelVersion: string;
  readonly provider: string;
}
export interface LoopPlc {
  writeResult(partId: number, epoch: number, pass: boolean, code: number, score: number): Promise<number>;
}
export interface LoopStore {
  add(record: ResultRecord & { runId: string }): void;
  update(seq: number, runId: string, patch: ResultPatch): void;
}
/** A shadow model beside the live one (registry/shadow-tap.ts): true = it took the frame and releases it. */
export interface LoopShadow {
  offer(frame: Frame, live: { runId: string; verdict: 'pass' | 'reject'; score: number; modelName: string; modelVersion: string; imageQueued: boolean }): boolean;
}
/**
 * The switch the vision server (vision-server/, OPC 40100 Start/Stop) turns: off, every part gets
 * a fail-safe reject (code INSPECTION_STOPPED, reason 'inspection_stopped') instead of inference.
 */
export interface InspectionSwitch {
  readonly inspecting: boolean;
  setInspecting(on: boolean): void;
}
export interface LoopImages {
  offer(job: { seq: number; runId: string; frame: Uint8Array; map?: { data: Float32Array; width: number; height: number }; verdict: 'pass' | 'reject' }): string | null;
}

export interface LoopOptions {
  runId: string;
  budgetMs: number;
  /** how parts are identified (default: a PartIdentity in 'trigger' mode) */
  identity?: PartIdentity;
  saveImages: 'all' | 'rejects' | 'none';
  passSampleEvery: number;
  doubtMargin: number;
}

/** Exact per-part samples, kept for the benchmark and health. */
export class LoopRecorders {
  readonly dispatch = new LatencyRecorder();
  readonly inference = new LatencyRecorder();
  /** registration (resize + register + warp) inside the inference worker, for packages that register */
  readonly registration = new LatencyRecorder();
  unregistrable = 0;
  readonly frameToVerdict = new LatencyRecorder();
  readonly plcWrite = new LatencyRecorder();
  /** per part, the instants on CLOCK_MONOTONIC (capture, inference start/end, verdict, PLC ack): the benchmark's line stages */
  readonly timeline = new PartTimeline();
  parts = 0;
  plcAcked = 0;
  plcFailed = 0;
  overBudget = 0;
  inferenceErrors = 0;
  /** parts whose inference missed its deadline (fail-safe rejects, code INFERENCE_TIMEOUT) */
  inferenceTimeouts = 0;
  /** parts recorded without inspection, by reason */
  readonly notInspected: Record<PartReason, number> = {
    dropped: 0, camera_error: 0, not_seen: 0, stale_epoch: 0, model_down: 0, inference_timeout: 0, station_stopping: 0,
    inspection_stopped: 0,
  };
  /** parts held back because their numbering was not the PLC's current one */
  partSyncErrors = 0;
  /** a part's processing threw after its row could be decided (logged; the part is a reject) */
  loopErrors = 0;
  /** a part that came a second time (it already had a row): ignored */
  duplicateParts = 0;
  /** rehearsal frames judged before Ready (station/rehearsal.ts): not parts */
  rehearsals = 0;
}
