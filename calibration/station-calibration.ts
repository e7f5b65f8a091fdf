/**
 * What a running station takes from its calibration file:
 *  - the lens model, for undistortion in the inference worker (when its
 *    calibrated image size matches the camera's);
 *  - the ROI and sampling interval for the focus/exposure checks that the
 *    capture worker computes on about one frame a second;
 *  - the reference values those checks are compared with: FOCUS_DRIFT and
 *    EXPOSURE_DRIFT are raised while the median of recent samples is outside
 *    the calibrated band, and the figures go to /metrics.
 *
 * Everything here runs at start-up or once per check sample (~1/s) on the
 * main thread: a handful of numbers, no image work.
 */
import type { Logger } from '../inspector/core/logger.js';
import { CalibrationStore, type CalibrationDoc } from './calibration-file.js';
import { DriftMonitor, type ImageChecks } from './image-checks.js';
import type { CameraModel } from './camera-model.js';
import type { Roi } from './roi.js';

/** What the capture worker needs to sample checks (plain data: crosses the thread boundary). */
export interface CaptureChecksConfig {
  intervalMs: number;
  roi: Roi | null;
  step: number;
}

export interface StationCalibrationConfig {
  dir: string;
  undistort: boolean;
  checkIntervalMs: number;
}

export interface DriftSinks {
  setAlarm(name: 'FOCUS_DRIFT' | 'EXPOSURE_DRIFT', raised: boolean, detail: string): void;
  setChecks?(c: ImageChecks): void;
}

export class StationCalibration {
  readonly monitor: DriftMonitor;

  private constructor(readonly doc: CalibrationDoc | null, readonly undistort: { camera: CameraModel } | null,
    readonly captureChecks: CaptureChecksConfig | null) {
    const ref = doc?.checks?.reference ?? null;
    this.monitor = new DriftMonitor(ref, doc?.checks?.bands);
  }

  /** Load the current version (none yet: an uncalibrated station, checks without reference). */
  static load(cfg: StationCalibrationConfig, frame: { width: number; height: number }, log: Logger): StationCalibration {
    let doc: CalibrationDoc | null = null;
    try {
      doc = new CalibrationStore(cfg.dir).current();
    } catch (err) {
      // a broken calibration file must not stop the line: run uncalibrated, say so loudly
      log.error({ err: (err as Error).message, dir: cfg.dir }, 'calibration file unreadable: running uncalibrated');
    }
    let undistort: { camera: CameraModel } | null = null;
    const lens = doc?.lens;
    if (cfg.undistort && lens) {
      if (lens.imageSize.width === frame.width && lens.imageSize.height === frame.height) undistort = { camera: lens.camera };
      else log.warn({ lens: lens.imageSize, frame }, 'lens calibrated at another image size: not undistorting');
    }
    const captureChecks = cfg.checkIntervalMs > 0 ? { intervalMs: cfg.checkIntervalMs, roi: doc?.roi ?? null, step: 4 } : null;
    log.info({ version: doc?.version ?? null, undistort: undistort !== null, roi: doc?.roi ?? null,
      checksReference: doc?.checks !== undefined }, doc ? 'calibration loaded' : 'no calibration: uncalibrated station');
    return new StationCalibration(doc, undistort, captureChecks);
  }

  /** The version in force (null: uncalibrated). */
  get version(): number | null { return this.doc?.version ?? null; }

  /** Identity of the undistortion the models get: equal keys give bit-identical frames. */
  get lensKey(): string { return this.undistort ? JSON.stringify(this.undistort.camera) : 'none'; }

  /** mm per frame pixel when the plane is calibrated. */
  get mmPerPx(): number | null { return this.doc?.plane?.mmPerPx ?? null; }

  /** Feed one check sample from the capture worker; raises/clears the drift alarms. */
  onChecks(c: ImageChecks, sinks: DriftSinks): void {
    sinks.setChecks?.(c);
    const v = this.monitor.add(c);
    if (!v) return;
    sinks.setAlarm('FOCUS_DRIFT', !v.focus.ok, v.focus.detail);
    sinks.setAlarm('EXPOSURE_DRIFT', !v.exposure.ok, v.exposure.detail);
  }
}
