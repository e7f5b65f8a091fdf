/**
 * What the HTTP server may ask of the station. The server runs in its own
 * worker thread; the view is the only door into the hot-path thread, and
 * every call is async so it can cross a MessagePort.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ComponentState = Type.Union([Type.Literal('up'), Type.Literal('degraded'), Type.Literal('down')]);

export const HealthReport = Type.Object({
  status: ComponentState,
  station: Type.String(),
  uptimeS: Type.Number(),
  parts: Type.Integer(),
  camera: Type.Object({
    state: ComponentState, detail: Type.String(),
    frames: Type.Integer(), dropped: Type.Integer(), restarts: Type.Integer(), errors: Type.Integer(),
  }),
  model: Type.Object({
    state: ComponentState, name: Type.String(), version: Type.String(),
    provider: Type.String(), fallbacks: Type.Array(Type.Object({ provider: Type.String(), reason: Type.String() })),
  }),
  plc: Type.Object({
    state: ComponentState, detail: Type.String(), endpoint: Type.String(),
    writes: Type.Integer(), writeErrors: Type.Integer(), reconnects: Type.Integer(),
  }),
  alarms: Type.Array(Type.String()),
  /** the calibration version in force (null: uncalibrated) and whether the live model undistorts with its lens */
  calibration: Type.Optional(Type.Object({ version: Type.Union([Type.Integer(), Type.Null()]), undistort: Type.Boolean() })),
});
export type HealthReport = Static<typeof HealthReport>;

/** The live model as the review API needs it (RPC `model`). */
export interface LiveModelInfo {
  name: string;
  version: string;
  threshold: number;
  /** the manifest's `outputs` section (defectClasses / classes are read from it) */
  outputs: unknown;
  /** the live package's folder on the station (the calibration page's registration check reads its reference) */
  packageDir?: string;
}

export interface StationView {
  health(): Promise<HealthReport>;
  metrics(): Promise<{ contentType: string; body: string }>;
  /**
   * Any other question for the station (the server worker's RpcClient.call):
   * `model`, `liveFrame`, and whatever handlers other features add through
   * ServerHost.handle(). Absent when the app runs without a station (tests).
   */
  call?<T>(method: string, args?: unknown, timeoutMs?: number): Promise<T>;
}
