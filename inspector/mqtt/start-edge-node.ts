/**
 * Wiring of the edge node into a station (station.ts calls this once, before the camera starts): the narrow port
 * it reads (stationState: counters, alarms, live model, as plain data) and its MQTT_DOWN alarm.
 */
import type { Logger } from '../core/logger.js';
import type { StationConfig } from '../station/config.js';
import { Alarm, type Alarms } from '../station/alarms.js';
import type { Registry } from 'prom-client';
import { MqttEdgeNode } from './edge-node.js';
import type { StationState } from './sparkplug.js';

/** What the edge node may know of a station: read through these, never the Station object. */
export interface StationStateSources {
  loop: { rec: { parts: number; notInspected: Record<string, number> } };
  plc: { counters: { writes: number; writeErrors: number } };
  alarms: Pick<Alarms, 'list'>;
  /** the live model (replaced by a promotion or rollback) */
  runner: { modelName: string; modelVersion: string };
}

export function stationState(s: StationStateSources): StationState {
  return {
    modelName: s.runner.modelName, modelVersion: s.runner.modelVersion, parts: s.loop.rec.parts,
    notInspected: Object.values(s.loop.rec.notInspected).reduce((a, b) => a + b, 0),
    plcWrites: s.plc.counters.writes, plcWriteErrors: s.plc.counters.writeErrors, alarms: s.alarms.list(),
  };
}

export function startMqttEdgeNode(config: StationConfig, station: StationStateSources, registry: Registry, alarms: Alarms, log: Logger,
  testHooks = false): Promise<MqttEdgeNode> {
  return MqttEdgeNode.start({
    config: config.mqtt, dbPath: config.results.dbPath, stationName: config.station.name, registry, log, testHooks,
    state: () => stationState(station),
    onDown: (down, detail) => alarms.set(Alarm.MQTT_DOWN, down, detail),
  });
}
