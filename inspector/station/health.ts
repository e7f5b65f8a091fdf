/**
 * Health of a station from the live state of its parts: camera, model and
 * PLC link each up / degraded / down, plus the raised alarms.
 *
 * The PLC is 'degraded' while PART_SYNC is raised (the station's part ids or
 * outcomes and the PLC's disagree): the link works but the line's record does
 * not. Its `line` puts the PLC's outcome counters (read back by PlcOutcomes)
 * beside the station's own count of the same parts.
 */
import type { HealthReport, LineReport } from '../server/station-view.js';
import type { PlcLink } from '../plc/plc-link.js';
import { Alarm, type Alarms } from './alarms.js';
import type { Station } from './station.js';
import { describeServerTls } from '../server/tls.js';

type State = HealthReport['status'];

function worst(...states: State[]): State {
  if (states.includes('down')) return 'down';
  if (states.includes('degraded')) return 'degraded';
  return 'up';
}

/** Station vs PLC, from the live objects (the part loop's recorders, PlcOutcomes): health and metrics read it. */
export function lineReport(s: Pick<Station, 'loop' | 'outcomes'>): LineReport {
  const c = s.outcomes.counters;
  const rec = s.loop.rec;
  const st = s.outcomes.stats;
  return {
    plc: c === null ? null : {
      epoch: c.Epoch, lastPartId: c.LastPartId, parts: c.Parts, accepted: c.Accepted, rejected: c.Rejected,
      timeout: c.RejectedTimeout, late: c.LateResults, sequenceErrors: c.SequenceMismatch,
      refused: c.WrongEpochResults + c.OrphanResults, duplicates: c.DuplicateResults,
    },
    station: { inspected: rec.parts, notInspected: { ...rec.notInspected }, partSyncErrors: rec.partSyncErrors },
    readBack: { reads: st.reads, readErrors: st.readErrors, mismatches: st.mismatches, refusals: st.refusals, missed: st.missed },
  };
}

/** The PLC link's security as /health says it: the connection's, else the configured one. */
export function plcSecurityText(plc: Pick<PlcLink, 'security' | 'securityConfig'>): string {
  const mode = plc.security?.mode ?? plc.securityConfig.mode;
  if (mode === 'None') return 'security None (configured: unsigned, unencrypted)';
  return plc.security ? `security ${plc.security.mode} ${plc.security.policy}` : `security ${mode}/${plc.securityConfig.policy}`;
}

/** PLC_LINK_DOWN's detail: the link state, the endpoint and why it is not connected (the link's last error, coded). */
export function plcLinkDownDetail(plc: Pick<PlcLink, 'state' | 'lastError'>, endpoint: string): string {
  return `link ${plc.state} (${endpoint})${plc.lastError ? `: ${plc.lastError}` : ''}`;
}

/** Keep PLC_LINK_DOWN in step with the link; while raised, its detail follows the latest reason. */
export function watchPlcLink(plc: PlcLink, alarms: Alarms, endpoint: string): () => void {
  const update = (): void => alarms.set(Alarm.PLC_LINK_DOWN, plc.state !== 'connected', plcLinkDownDetail(plc, endpoint));
  plc.on('state', update);
  return update;
}

/** /health's `server`: HTTPS with which certificate, or plain HTTP because the config says so (as plc security None is said). */
function serverTransport(s: Pick<Station, 'config' | 'httpsFingerprint'>): NonNullable<HealthReport['server']> {
  const fp = s.httpsFingerprint;
  const mode = s.config.server.tls.mode;
  return { tls: mode, detail: describeServerTls(mode, fp), ...(fp ? { fingerprint: fp } : {}) };
}

export function buildHealth(s: Station): HealthReport {
  const cam = s.source.stats;
  const camState: State = s.source.state === 'running' ? 'up' : s.source.state === 'restarting' || s.source.state === 'starting' ? 'degraded' : 'down';
  const modelState: State = s.alarms.isRaised(Alarm.MODEL_DOWN) ? 'down' : 'up';
  const partSync = s.alarms.isRaised(Alarm.PART_SYNC);
  const plcState: State = s.plc.state !== 'connected' ? 'down' : partSync ? 'degraded' : 'up';
  const c = s.plc.counters;
  // the line still judges with DISK_LOW raised, but images are about to be lost: degraded, not down
  const diskState: State = s.alarms.isRaised(Alarm.DISK_LOW) ? 'degraded' : 'up';
  return {
    status: worst(camState, modelState, plcState, diskState),
    station: s.config.station.name,
    uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
    parts: s.loop.rec.parts,
    camera: { state: camState, detail: `${s.config.camera.template}: ${s.source.state}`, frames: cam.frames, dropped: cam.dropped, restarts: cam.restarts, errors: cam.errors },
    model: { state: modelState, name: s.runner.modelName, version: s.runner.modelVersion, provider: s.runner.provider, fallbacks: [...s.runner.fallbacks] },
    plc: {
      state: plcState,
      detail: `${s.plc.state}${partSync ? ', part ids out of sync (PART_SYNC)' : ''}, ${plcSecurityText(s.plc)}`
        + (s.plc.state !== 'connected' && s.plc.lastError ? `: ${s.plc.lastError}` : ''),
      endpoint: s.config.plc.endpoint, writes: c.writes, writeErrors: c.writeErrors, reconnects: c.reconnects, line: lineReport(s),
    },
    alarms: s.alarms.list(),
    calibration: { version: s.calibration.version, undistort: s.calibration.undistort !== null },
    // present only when enabled; never part of `status`: the line does not depend on MQTT (MQTT_DOWN is in alarms)
    ...(s.mqtt ? { mqtt: s.mqtt.health() } : {}),
    ...(s.config.server.enabled ? { server: serverTransport(s) } : {}),
  };
}
