/**
 * Start the OPC 40100 vision server of a station from its config (`visionServer`), with
 * the narrow ports the station hands it. Also: what counts as a station fault for the
 * VisionStateMachine's Error state, and the redaction of the server's user passwords
 * from the run config the results database keeps.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import { ConfigInvalidError } from '../core/errors.js';
import type { StationConfig } from '../station/config.js';
import { Alarm, type Alarms } from '../station/alarms.js';
import { VisionServerHost } from './vision-host.js';
import type { VisionPorts } from './vision-ports.js';

/** Camera templates whose frames are not of a real line (their results are IsSimulated). */
const SIMULATED_TEMPLATES: ReadonlySet<string> = new Set(['replay', 'replay-triggered', 'testsrc']);

/** The faults that put the VisionStateMachine in Error: the station cannot judge parts while one is raised. */
const FAULT_ALARMS = [Alarm.CAMERA_DOWN, Alarm.MODEL_DOWN, Alarm.PLC_LINK_DOWN] as const;

export function stationFault(alarms: Pick<Alarms, 'isRaised'>): string | null {
  const raised = FAULT_ALARMS.filter((a) => alarms.isRaised(a));
  return raised.length > 0 ? raised.join(', ') : null;
}

export function redactVisionSecrets<T extends Pick<StationConfig, 'visionServer'>>(config: T): T {
  if (!config.visionServer.users.some((u) => u.password !== undefined)) return config;
  return { ...config, visionServer: { ...config.visionServer,
    users: config.visionServer.users.map((u) => (u.password === undefined ? u : { ...u, password: '<redacted>' })) } };
}

function resolveUsers(users: StationConfig['visionServer']['users']): Array<{ userName: string; password: string }> {
  return users.map((u, i) => {
    if ((u.password === undefined) === (u.passwordFile === undefined)) {
      throw new ConfigInvalidError(`/visionServer/users/${i}: give exactly one of password and passwordFile`);
    }
    try {
      return { userName: u.userName, password: u.password ?? readFileSync(u.passwordFile!, 'utf8').trim() };
    } catch (err) {
      throw new ConfigInvalidError(`/visionServer/users/${i}/passwordFile: ${(err as Error).message}`);
    }
  });
}

export async function startVisionServer(config: StationConfig, runId: string, ports: VisionPorts, log: Logger): Promise<VisionServerHost> {
  const v = config.visionServer;
  if (v.securityModes.some((m) => m !== 'None') && v.securityPolicies.length === 0) {
    throw new ConfigInvalidError('/visionServer/securityPolicies: Sign / SignAndEncrypt need at least one policy');
  }
  if (!v.allowAnonymous && v.users.length === 0) {
    log.warn('visionServer: no anonymous access and no users: only X.509 users whose certificates are trusted can open a session');
  }
  if (!v.startInspecting) ports.inspection.setInspecting(false); // Preoperational until a client starts it
  return VisionServerHost.start({
    host: v.host, port: v.port, certificateFolder: resolve(v.certificateFolder),
    securityModes: v.securityModes, securityPolicies: v.securityPolicies, allowAnonymous: v.allowAnonymous, users: resolveUsers(v.users),
    resultsDbPath: resolve(config.results.dbPath), pollMs: v.pollMs, station: config.station.name, runId,
    isSimulated: SIMULATED_TEMPLATES.has(config.camera.template),
  }, ports, log);
}
