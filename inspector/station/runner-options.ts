/**
 * The one place that turns the station's current state (config + the
 * calibration now in force) into a ModelRunner's options. The live runner at
 * start, a promoted or rolled-back one, the shadow runner, the validation
 * gate's runners and a re-load after a new calibration all come from here, so
 * every model sees the same (undistorted) frames as the live one.
 */
import type { Logger } from '../core/logger.js';
import type { ModelRunnerOptions } from '../inference/model-runner.js';
import type { StationConfig } from './config.js';

/** What the runner options depend on besides the config: the calibration in force. */
export interface RunnerCalibration {
  /** the lens model to undistort with (null: frames as the camera sees them) */
  readonly undistort: ModelRunnerOptions['undistort'] | null;
}

/** nice value of shadow and validation runners (the live runner stays at 0) */
export const BACKGROUND_NICE = 10;

export interface RunnerRole {
  packageDir: string;
  /** a shadow or validation runner: niced so the live model keeps the CPU it needs */
  background?: boolean;
  inputRing: NonNullable<ModelRunnerOptions['inputRing']>;
  logger: Logger;
}

export function runnerOptions(config: StationConfig, calibration: RunnerCalibration, role: RunnerRole): ModelRunnerOptions {
  const { model, camera } = config;
  return {
    ...(role.background ? { nice: BACKGROUND_NICE } : {}),
    packageDir: role.packageDir, frame: { width: camera.width, height: camera.height },
    providers: model.providers, intraOpNumThreads: model.intraOpNumThreads, warmupRuns: model.warmupRuns,
    // shared, not transferred: an ArrayBuffer arriving back on the main thread counts as a fresh
    // 1.3 MB external allocation there, and at 100 parts/s that kept V8 in back-to-back mark-compacts
    transport: 'shared', inputRing: role.inputRing,
    undistort: calibration.undistort ?? null,
    deadlineMs: model.deadlineMs,
    trtEngineCacheDir: model.trtEngineCacheDir,
    // the soak's inference-kill fault (station/fault-injection.ts); never set by a config file
    ...(process.env.INSPECTOR_FAULT_INJECTION === '1' ? { testHooks: true } : {}),
    logger: role.logger,
  };
}
