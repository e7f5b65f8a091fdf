/**
 * The MQTT part of /health (present only when mqtt.enabled), as a TypeBox schema: the server's HealthReport
 * (server/station-view.ts) includes it, the edge node (mqtt/edge-node.ts) fills it.
 */
import { Type, type Static } from '@sinclair/typebox';

export const MqttHealth = Type.Object({
  /** up: born on the broker; degraded: anything else (the line runs without MQTT, results wait in the database) */
  state: Type.Union([Type.Literal('up'), Type.Literal('degraded')]),
  connection: Type.Union([Type.Literal('connecting'), Type.Literal('waiting-host'), Type.Literal('online'), Type.Literal('down'), Type.Literal('closed')]),
  url: Type.String(),
  group: Type.String(),
  edgeNode: Type.String(),
  /** results stored and not yet acknowledged by the broker */
  backlog: Type.Integer(),
  /** results skipped over mqtt.maxBacklog (cumulative, persisted) */
  dropped: Type.Integer(),
  /** results acknowledged by the broker since the station started */
  partsAcked: Type.Integer(),
  bdSeq: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
}, { additionalProperties: false });
export type MqttHealth = Static<typeof MqttHealth>;
