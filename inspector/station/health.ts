/**
 * Health of a station from the live state of its parts: camera, model and
 * PLC link each up / degraded / down, plus the raised alarms.
 */
import type { HealthReport } from '../server/station-view.js';
import { Alarm } from './alarms.js';
import type { Station } from './station.js';

type State = HealthReport['status'];

function worst(...states: State[]): State {
  if (states.includes('down')) return 'down';
  if (states.includes('degraded')) return 'degraded';
  return 'up';
}

export function buildHealth(s: Station): HealthReport {
  const cam = s.source.stats;
  const camState: State = s.source.state === 'running' ? 'up' : s.source.state === 'restarting' || s.source.state === 'starting' ? 'degraded' : 'down';
  const modelState: State = s.alarms.isRaised(Alarm.MODEL_DOWN) ? 'down' : 'up';
  const plcState: State = s.plc.state === 'connected' ? 'up' : 'down';
  const c = s.plc.counters;
  return {
    status: worst(camState, modelState, plcState),
    station: s.config.station.name,
    uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
    parts: s.loop.rec.parts,
    camera: { state: camState, detail: `${s.config.camera.template}: ${s.source.state}`, frames: cam.frames, dropped: cam.dropped, restarts: cam.restarts, errors: cam.errors },
    model: { state: modelState, name: s.runner.modelName, version: s.runner.modelVersion, provider: s.runner.provider, fallbacks: [...s.runner.fallbacks] },
    plc: { state: plcState, detail: s.plc.state, endpoint: s.config.plc.endpoint, writes: c.writes, writeErrors: c.writeErrors, reconnects: c.reconnects },
    alarms: s.alarms.list(),
    calibration: { version: s.calibration.version, undistort: s.calibration.undistort !== null },
  };
}
