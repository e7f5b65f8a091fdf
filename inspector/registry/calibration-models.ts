/**
 * The registry side of a calibration re-load (station/calibration-reload.ts,
 * Station.reloadCalibration): when the lens changed, the live model, and the shadow model if
 * one runs, are re-created with runners built from the station's current state (the new
 * undistortion table) and swapped between two parts exactly as a promotion is (LiveModels).
 * The registry state is unchanged: the same versions stay live and shadowing.
 *
 * Both runners are created before anything is swapped: when either cannot start, the one
 * already made is closed, the error is thrown, and the live model and the shadow keep running
 * with the previous calibration. ModelLifecycle.reloadForCalibration runs this as its own
 * operation (one at a time).
 */
import type { ModelRunner } from '../inference/model-runner.js';
import type { ModelRegistry } from './model-registry.js';
import { refKey, type RegistryState } from './registry-state.js';
import type { LifecycleHost, LiveModels } from './live-models.js';

export interface CalibrationModels {
  /** name@version of the re-loaded live model */
  live: string;
  /** name@version of the re-loaded shadow model (null: nothing shadowing) */
  shadow: string | null;
}

export async function reloadModelsForCalibration(
  models: LiveModels, state: RegistryState, registry: ModelRegistry, host: LifecycleHost, why: string,
): Promise<CalibrationModels> {
  const dir = models.liveDirOrConfigured();
  const next = await models.createRunner(dir);
  const shadowRef = state.shadow;
  let shadow: ModelRunner | null = null;
  try {
    if (models.tap && shadowRef) shadow = await models.createRunner(registry.dirOf(shadowRef), true);
  } catch (err) {
    await next.close();
    throw err;
  }
  await models.swapTo(next, dir);
  if (shadow) await models.startTap(shadow);
  const live = `${next.modelName}@${next.modelVersion}`;
  host.logger.info({ why, live, shadow: shadowRef ? refKey(shadowRef) : null, calibrationVersion: host.calibrationVersion() },
    'models re-loaded for a new calibration');
  return { live, shadow: shadow && shadowRef ? refKey(shadowRef) : null };
}
