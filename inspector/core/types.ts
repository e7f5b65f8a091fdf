/**
 * The shapes every part of the appliance agrees on: a frame, a verdict, a
 * result record. Keep them small and plain: they cross worker boundaries.
 */

/** One camera frame as it leaves capture. `data` is owned by the consumer. */
export interface Frame {
  /** Station-wide part sequence, 1-based, contiguous while the source runs. */
  seq: number;
  /** process.hrtime.bigint() taken when the frame reached JS (no PTS comes back from GStreamer). */
  capturedNs: bigint;
  width: number;
  height: number;
  /** Pixel format; the station works on GRAY8. */
  format: 'GRAY8';
  data: Uint8Array;
  /** Where the frame came from, when the source knows (replay: the image file). */
  sourceRef?: string;
  /**
   * The part's identity, from the line's trigger (plc/trigger-telegram.ts): the PLC's
   * part-numbering epoch and PartId. Absent for a free-running camera.
   */
  partId?: number;
  lineEpoch?: number;
  /** the simulated line's physical part (replay image index) */
  item?: number;
  /**
   * The frame's way to the station, CLOCK_MONOTONIC ns like `capturedNs` (the benchmark splits
   * trigger → frame and frame → inference start with them): `triggeredNs` when the capture
   * worker handled the part's trigger telegram (a triggered camera only), `deliveredNs` when the
   * main thread took the frame from the capture worker.
   */
  triggeredNs?: bigint;
  deliveredNs?: bigint;
  /**
   * A rehearsal frame (station/rehearsal.ts): pushed through the camera path, the hand-overs,
   * inference and the decision before Station.Ready, to warm them; not a part, never a row,
   * never sent to the PLC, not counted as a camera frame.
   */
  rehearsal?: boolean;
  /** Index of the shared capture-ring slot holding `data`, when it lives in one. */
  slot?: number;
  /**
   * Give the frame's memory back to its source. Frames from the capture worker
   * live in a shared ring slot: the consumer calls this once it is done with
   * `data` (after inference and the image hand-off). Absent: memory is GC'd.
   */
  release?: () => void;
}

/** Result codes sent to the PLC. 0 is the only code that means "accept". */
export const ResultCode = {
  PASS: 0,
  DEFECT: 1,
  INFERENCE_ERROR: 2,
  OVER_BUDGET: 3,
  UNREGISTRABLE: 4,
  /** the inference worker missed its per-part deadline (hung or dead session): fail-safe reject */
  INFERENCE_TIMEOUT: 5,
  /** no inspection: the frame never reached a verdict (see PartReason); the row still exists */
  NOT_INSPECTED: 6,
  /** inspection stopped on purpose (OPC 40100 Stop / Abort / Halt, vision-server/): every part is a fail-safe reject */
  INSPECTION_STOPPED: 7,
} as const;
export type ResultCodeValue = (typeof ResultCode)[keyof typeof ResultCode];

export type Verdict = 'pass' | 'reject';

/**
 * Why a part has no model verdict (stored in `results.reason`; NULL on an inspected part):
 *  - dropped: the frame was dropped before inference (queue full, no capture slot)
 *  - camera_error: the camera failed on the part's trigger
 *  - not_seen: the PLC numbered the part but the station never got it (a gap; the row is made by the gate outcome)
 *  - stale_epoch: the part belongs to a PLC numbering epoch that is no longer current
 *  - model_down: no model could run
 *  - inference_timeout: the inference missed its per-part deadline (ResultCode.INFERENCE_TIMEOUT)
 *  - station_stopping: the station stopped before the part was inspected
 *  - inspection_stopped: inspection was stopped on purpose (ResultCode.INSPECTION_STOPPED; the vision server's state machine)
 */
export type PartReason = 'dropped' | 'camera_error' | 'not_seen' | 'stale_epoch' | 'model_down' | 'inference_timeout' | 'station_stopping'
  | 'inspection_stopped';

/** What the gate did with a part, as read back from the PLC (results.gate_outcome). */
export type GateOutcome = 'accepted' | 'rejected' | 'timeout' | 'late';

/** Per-stage timings of one part, in milliseconds from capture. */
export interface StageTimings {
  /** capture → handed to the inference worker (queueing + copy) */
  dispatchMs: number;
  /** inside the worker: session.run (preprocessing graph + model) */
  inferenceMs: number;
  /** capture → verdict decided on the main thread */
  frameToVerdictMs: number;
  /** duration of the PLC write request (filled when the write completes; null if never sent) */
  plcWriteMs: number | null;
}

/** What is stored for every part: results are never dropped. */
export interface ResultRecord {
  seq: number;
  capturedAtMs: number; // wall clock (Date.now()) at capture, for people
  verdict: Verdict;
  code: ResultCodeValue;
  score: number;
  modelName: string;
  modelVersion: string;
  provider: string;
  timings: StageTimings;
  /** pending until the PLC write settles; failed covers a link that was down */
  plcStatus: 'pending' | 'acked' | 'failed';
  sourceRef: string | null;
  imagePath: string | null;
  anomalyMapPath: string | null;
  /**
   * The model's defect class of a DEFECT reject: the worst triggering class of a multi-class
   * package (ClassDecision), the single defect class of a one-class package; null on a pass,
   * on an error/unregistrable reject, and when the package cannot tell (several classes, one
   * map channel). Optional for writers that predate it (stored as NULL).
   */
  defectClass?: string | null;
  /**
   * Line truth (results schema v4): the PLC's part-numbering epoch (UInt32, new on every PLC restart / counter
   * reset) and the part's id within it (UInt32, 1, 2, 3 …). With a partId the store keeps exactly one row per
   * (lineEpoch, partId). Optional for writers that predate them (stored as NULL).
   */
  lineEpoch?: number | null;
  partId?: number | null;
  /** why the part has no model verdict (null / absent: it was inspected) */
  reason?: PartReason | null;
}
