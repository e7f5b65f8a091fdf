/**
 * The ModelRunner's public shapes: what create() takes (ModelRunnerOptions) and what
 * infer() resolves with (InferResult). Types only, no code: kept apart from
 * model-runner.ts so that the options and their defaults read on their own,
 * without the runner's machinery around them. model-runner.ts re-exports both
 * (importers such as station/runner-options.ts take them from there).
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { Logger } from '../core/logger.js';
import type { BackoffOptions } from '../core/supervised-worker.js';
import type { RegistrationFigures } from '../teach/frame-registration.js';
import type { FrameTransport, WorkerInit } from './inference-worker.js';

export interface ModelRunnerOptions {
  packageDir: string;
  frame: { width: number; height: number };
  providers: readonly string[];
  intraOpNumThreads: number;
  warmupRuns: number;
  logger?: Logger;
  /** how frames reach the worker; see inference-worker.ts (default 'transfer', the cheaper one) */
  transport?: FrameTransport;
  /** 'graph' forces the compiled ONNX preprocessing (default 'auto': JS area binning where it applies) */
  preprocess?: 'auto' | 'graph';
  /** nice value of the worker thread (e.g. 10 for shadow and validation runners); default 0 */
  nice?: number;
  /** shared transport: the capture ring, so `infer(frame, slot)` skips the main-thread copy */
  inputRing?: { frames: SharedArrayBuffer; slots: number; slotBytes: number };
  /** extra ORT session options merged over the defaults (e.g. `extra` config entries) */
  sessionOptions?: InferenceSession.SessionOptions;
  /** the station's lens calibration: frames are undistorted right after binning (see inference-worker.ts) */
  undistort?: WorkerInit['undistort'];
  /** an infer() not answered within this rejects with INSPECTOR_INFERENCE_TIMEOUT and the worker is respawned (default 1000) */
  deadlineMs?: number;
  /** backoff of the respawns (default 200 ms doubling up to 30 s, ±20 %) */
  restartBackoff?: Partial<BackoffOptions>;
  /** a (re)start that is not ready within this fails (default 300 s: TensorRT engine builds are slow) */
  startTimeoutMs?: number;
  /** tests only, never in a station config: the worker obeys debugHang()/debugCrash() */
  testHooks?: boolean;
  /** TensorRT engines are built into / taken from this cache root when the worker starts (trt-engine-cache.ts) */
  trtEngineCacheDir?: string;
}

export interface InferResult {
  score: number;
  /** session.run inside the worker (preprocessing graph + model) */
  inferenceMs: number;
  /** when the worker started and ended this job, CLOCK_MONOTONIC ns (process.hrtime.bigint(): one clock for every thread and process) */
  startNs: bigint;
  endNs: bigint;
  /** VIEW of shared memory, overwritten by the next infer(): copy it (runner.copyMap()) to keep it */
  map: Float32Array;
  mapWidth: number;
  mapHeight: number;
  /**
   * Packages with a manifest `registration`: this frame's registration (the worker's object,
   * overwritten by the next infer()). ok=false: the frame could not be registered, score is NaN.
   */
  registration?: RegistrationFigures | null;
}
