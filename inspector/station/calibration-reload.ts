/**
 * The station side of "a calibration was saved": the server worker's
 * calibration routes (routes/calibration.ts) post `calibration.changed` after
 * every save or activation; the station re-reads the calibration folder and
 * puts the new version in force without a restart (Station.reloadCalibration).
 *
 * The RPC answers at once (a re-load creates model runners: seconds); which
 * version is in force is then visible in /health (`calibration.version`),
 * in /metrics (`inspector_calibration_version`) and in the log ('calibration in force').
 */
import type { Logger } from '../core/logger.js';

export const CALIBRATION_RPC = { changed: 'calibration.changed' } as const;

export interface CalibrationReloadResult {
  /** the version now in force (null: uncalibrated) */
  version: number | null;
  previous: number | null;
  /** the lens (undistortion) differs from the previous version's: the models were re-loaded */
  lensChanged: boolean;
  undistort: boolean;
  /** the re-loaded runners (null: the lens did not change, no model was touched) */
  models: { live: string; shadow: string | null } | null;
}

interface Reloadable {
  reloadCalibration(why: string): Promise<CalibrationReloadResult>;
  readonly calibration: { readonly version: number | null };
}

type Handler = (args: any) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function calibrationRpcHandlers(station: Reloadable, log?: Logger): Record<string, Handler> {
  return {
    [CALIBRATION_RPC.changed]: async (a: { version?: number | null; actor?: string; action?: string } | undefined) => {
      const why = `${a?.action ?? 'calibration saved'} by ${a?.actor ?? 'unknown'} (v${a?.version ?? '?'})`;
      station.reloadCalibration(why).catch((err: unknown) => log?.error({ err, why }, 'calibration re-load failed'));
      return { accepted: true, inForce: station.calibration.version };
    },
  };
}
