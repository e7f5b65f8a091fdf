/**
 * What the HTTP server may ask of the station. The server runs in its own
 * worker thread; the view is the only door into the hot-path thread, and
 * every call is async so it can cross a MessagePort.
 */
import { Type, type Static, type TInteger } from '@sinclair/typebox';
import { MqttHealth } from '../mqtt/mqtt-health.js';
import type { PartReason } from '../core/types.js';

export const ComponentState = Type.Union([Type.Literal('up'), Type.Literal('degraded'), Type.Literal('down')]);

const count = (description: string) => Type.Integer({ minimum: 0, description });

/** One counter per reason a part got no model verdict (core/types.ts PartReason; every reason, 0 included). */
export const NotInspectedByReason = Type.Object({
  dropped: count('frames dropped before inference'),
  camera_error: count('the camera failed on the part\'s trigger'),
  not_seen: count('the PLC numbered the part, the station never got it'),
  stale_epoch: count('the part belongs to a PLC numbering epoch that is no longer current'),
  model_down: count('no model could run'),
  inference_timeout: count('the inference missed its per-part deadline'),
  station_stopping: count('the station stopped before the part was inspected'),
  inspection_stopped: count('inspection was stopped on purpose (OPC 40100 Stop / Abort / Halt): fail-safe rejects, code 7'),
} satisfies Record<PartReason, TInteger>, { description: 'Parts recorded without inspection, by reason' });

/**
 * The PLC's own counters, read back by the station (PlcOutcomes, a few times a second;
 * plc-contract.ts plcTags). They restart from 0 with every new epoch (PLC restart).
 */
export const PlcLineCounters = Type.Object({
  epoch: count('Line.Epoch: the PLC\'s part-numbering epoch'),
  lastPartId: count('Line.LastPartId: the last part the photo-eye triggered in this epoch'),
  parts: count('Parts: parts seen by the photo-eye'),
  accepted: count('Accepted: parts let through by the gate'),
  rejected: count('Rejected: parts rejected for any reason (timeouts included)'),
  timeout: count('RejectedTimeout: parts rejected because no result arrived inside the gate window'),
  late: count('LateResults: results that came after their part\'s window closed'),
  sequenceErrors: count('SequenceMismatch: strobes whose PartId was not the previous one + 1'),
  refused: count('WrongEpochResults + OrphanResults: results the PLC never applied (wrong epoch, a part it did not trigger)'),
  duplicates: count('DuplicateResults: second and later results for one part'),
}, { additionalProperties: false });

/** Station vs PLC: the same parts counted on both sides of the link (the Live page's "Station vs PLC" table). */
export const LineReport = Type.Object({
  plc: Type.Union([PlcLineCounters, Type.Null()], { description: 'null before the first successful read of the PLC\'s counters' }),
  station: Type.Object({
    inspected: count('parts that got a model verdict'),
    notInspected: NotInspectedByReason,
    partSyncErrors: count('parts held back because their numbering was not the PLC\'s current one'),
  }, { additionalProperties: false }),
  readBack: Type.Object({
    reads: count('successful reads of the PLC\'s counters and outcome log'),
    readErrors: count('failed reads'),
    mismatches: count('outcomes that disagree with what the station sent (PART_SYNC)'),
    refusals: count('results the PLC refused, counted by the station since it started (PART_SYNC)'),
    missed: count('outcomes that scrolled out of the PLC\'s log before they were read'),
  }, { additionalProperties: false, description: 'the station\'s read-back of the PLC\'s outcomes' }),
}, { additionalProperties: false });
export type LineReport = Static<typeof LineReport>;

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
  /** down: link not connected; degraded: connected but PART_SYNC raised (part ids or outcomes disagree); up: neither */
  plc: Type.Object({
    state: ComponentState, detail: Type.String(), endpoint: Type.String(),
    writes: Type.Integer(), writeErrors: Type.Integer(), reconnects: Type.Integer(),
    /** the PLC's outcome counters beside the station's; absent where the view has no line (a server without a station) */
    line: Type.Optional(LineReport),
  }),
  alarms: Type.Array(Type.String()),
  /** the calibration version in force (null: uncalibrated) and whether the live model undistorts with its lens */
  calibration: Type.Optional(Type.Object({ version: Type.Union([Type.Integer(), Type.Null()]), undistort: Type.Boolean() })),
  /** the MQTT Sparkplug B edge node (inspector/mqtt/), only when mqtt.enabled: up, or degraded (never down: the line runs without it) */
  mqtt: Type.Optional(MqttHealth),
  /** the UI/API transport: tls 'self-signed' | 'files' | 'off' (plain HTTP, said so in detail), the certificate's SHA-256 */
  server: Type.Optional(Type.Object({ tls: Type.String(), detail: Type.String(), fingerprint: Type.Optional(Type.String()) })),
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
