/**
 * The PLC simulator as its own process (a real PLC is a separate box: its gate
 * timers must not share the station's event loop).
 *
 *   npx tsx inspector/plc/plc-sim-main.ts --port 4840 --photo-eye-port 4841 --gate-window-ms 100
 *   npx tsx inspector/plc/plc-sim-main.ts --port 4840 --line-rate 100 --trigger-port 4842 --items 120
 *
 * --line-rate R: the line's own clock fires R parts/s; --trigger-port P: every part
 * triggers the camera at 127.0.0.1:P with (Epoch, PartId, item) (trigger-telegram.ts).
 * --defective-items-file F: JSON array of the defective item indexes (soak escapes).
 *
 * OPC UA security (the endpoints a PLC offers): --security-modes None,Sign,SignAndEncrypt and
 * --security-policies Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss (default: all);
 * --users-file F: JSON [{ "userName": …, "password": … }] (a file, never argv: ps shows argv);
 * --disable-anonymous; --explicit-trust: client certificates must be trusted in
 * <cert-folder>/server (`inspector pki trust --folder <cert-folder>/server <thumbprint>`).
 * The server's certificate: <cert-folder>/server/own/certs/certificate.pem.
 *
 * Logs its counters every --log-interval-ms (default 5000; 0 = never).
 *
 * As a child with an IPC channel (fork, or spawn with 'ipc' in stdio):
 *   → { type: 'ready', endpoint, photoEyePort, serverStartMs }   once listening
 *   ← { type: 'counters' }               → { type: 'counters', counters }
 *   ← { type: 'outcomes', from, to }     → { type: 'outcomes', summary }
 *   ← { type: 'stopServer' } / { type: 'startServer' }
 *                                        → { type: 'serverStopped' } / { type: 'serverStarted' }
 *   ← { type: 'truth' }                  → { type: 'truth', truth, counters, triggerSendErrors }
 *   ← { type: 'startLine', rate? } / { type: 'stopLine' } → { type: 'lineStarted' } / { type: 'lineStopped', lastPartId }
 *   ← { type: 'lineTiming', from, to }   → { type: 'lineTiming', timing, unmatchedResults }  (line-timing.ts: photo-eye
 *                                          and latch times per part on CLOCK_MONOTONIC)
 *   ← { type: 'stop' }  (or SIGTERM / SIGINT): stops cleanly, exits 0
 * A start failure is reported as { type: 'error', message } and exit code 1.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { PlcSimulator, type PlcSimSecurityMode, type PlcSimSecurityPolicy } from './plc-simulator.js';

const log = logger.child({ mod: 'plc-sim-main' });

function intArg(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], got "${value}"\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4840' },
    'photo-eye-port': { type: 'string', default: '4841' },
    'gate-window-ms': { type: 'string', default: '100' },
    'heartbeat-interval-ms': { type: 'string', default: '500' },
    'log-interval-ms': { type: 'string', default: '5000' },
    'cert-folder': { type: 'string' },
    'line-rate': { type: 'string', default: '0' },
    'trigger-port': { type: 'string' },
    items: { type: 'string' },
    'max-parts': { type: 'string' },
    'defective-items-file': { type: 'string' },
    'line-paused': { type: 'boolean', default: false },
    /** hold the line while the station is not Ready (Station.Ready + heartbeat; plc-simulator.ts) */
    'ready-interlock': { type: 'boolean', default: false },
    'security-modes': { type: 'string', default: 'None,Sign,SignAndEncrypt' },
    'security-policies': { type: 'string', default: 'Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss' },
    'users-file': { type: 'string' },
    'disable-anonymous': { type: 'boolean', default: false },
    'explicit-trust': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write('usage: plc-sim-main.ts [--port 4840] [--photo-eye-port 4841] [--gate-window-ms 100]\n'
    + '                       [--heartbeat-interval-ms 500] [--log-interval-ms 5000] [--cert-folder DIR]\n'
    + '                       [--security-modes None,Sign,SignAndEncrypt] [--security-policies Basic256Sha256,...]\n'
    + '                       [--users-file F] [--disable-anonymous] [--explicit-trust] [--ready-interlock]\n');
  process.exit(0);
}

const port = intArg('port', values.port, 4840, 1, 65535);
const photoEyePort = intArg('photo-eye-port', values['photo-eye-port'], 4841, 0, 65535);
const gateWindowMs = intArg('gate-window-ms', values['gate-window-ms'], 100, 1, 60_000);
const heartbeatIntervalMs = intArg('heartbeat-interval-ms', values['heartbeat-interval-ms'], 500, 10, 60_000);
const logIntervalMs = intArg('log-interval-ms', values['log-interval-ms'], 5000, 0, 3_600_000);

const lineRate = Number(values['line-rate']);
if (!Number.isFinite(lineRate) || lineRate < 0 || lineRate > 10_000) {
  process.stderr.write(`--line-rate must be a number in [0, 10000], got "${values['line-rate']}"\n`);
  process.exit(2);
}
const triggerPort = values['trigger-port'] === undefined ? undefined : intArg('trigger-port', values['trigger-port'], 0, 1, 65535);
const items = values.items === undefined ? undefined : intArg('items', values.items, 0, 1, 1_000_000);
const maxParts = values['max-parts'] === undefined ? undefined : intArg('max-parts', values['max-parts'], 0, 1, 2 ** 31);
const defectiveItems = values['defective-items-file']
  ? (JSON.parse(readFileSync(values['defective-items-file'], 'utf8')) as number[]) : undefined;
function listArg<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((v) => v.trim()).filter(Boolean);
  const bad = items.filter((v) => !allowed.includes(v as T));
  if (bad.length || items.length === 0) {
    process.stderr.write(`--${name}: ${bad.join(', ') || 'empty'}; allowed: ${allowed.join(', ')}\n`);
    process.exit(2);
  }
  return items as T[];
}
const modes = listArg<PlcSimSecurityMode>('security-modes', values['security-modes'], ['None', 'Sign', 'SignAndEncrypt']);
const policies = listArg<PlcSimSecurityPolicy>('security-policies', values['security-policies'],
  ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss']);
let users: { userName: string; password: string }[] = [];
if (values['users-file']) {
  const parsed = JSON.parse(readFileSync(values['users-file'], 'utf8')) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((u) => typeof u?.userName === 'string' && typeof u?.password === 'string')) {
    process.stderr.write('--users-file: a JSON array of { "userName": string, "password": string }\n');
    process.exit(2);
  }
  users = parsed as typeof users;
}
const sim = new PlcSimulator({
  port, photoEyePort, gateWindowMs, heartbeatIntervalMs, readyInterlock: values['ready-interlock'],
  line: {
    rate: lineRate, autoStart: !values['line-paused'],
    ...(triggerPort !== undefined ? { triggerPort } : {}), ...(items !== undefined ? { items } : {}),
    ...(maxParts !== undefined ? { maxParts } : {}), ...(defectiveItems ? { defectiveItems } : {}),
  },
  ...(values['cert-folder'] ? { certificateFolder: values['cert-folder'] } : {}),
  security: { modes, policies, users, allowAnonymous: !values['disable-anonymous'], autoAcceptClientCertificates: !values['explicit-trust'] },
  logger,
});

type Incoming =
  | { type: 'counters' }
  | { type: 'outcomes'; from: number; to: number }
  | { type: 'stopServer' }
  | { type: 'startServer' }
  | { type: 'truth' }
  | { type: 'startLine'; rate?: number }
  | { type: 'stopLine' }
  | { type: 'lineTiming'; from: number; to: number }
  | { type: 'stop' };

const send = (m: Record<string, unknown>): void => { if (process.send && process.connected) process.send(m); };

let stopping: Promise<void> | null = null;
function shutdown(reason: string): Promise<void> {
  stopping ??= (async () => {
    log.info({ reason, counters: sim.counters() }, 'PLC simulator stopping');
    if (logTimer) clearInterval(logTimer);
    try {
      await sim.stop();
    } catch (err) {
      log.error({ err: describeError(err) }, 'PLC simulator stop failed');
      process.exit(1);
    }
    if (process.connected) process.disconnect();
    process.exit(0);
  })();
  return stopping;
}

let logTimer: NodeJS.Timeout | null = null;

process.on('SIGTERM', () => { void shutdown('SIGTERM'); });
process.on('SIGINT', () => { void shutdown('SIGINT'); });
// parent gone (IPC channel closed): do not linger as an orphan holding the ports
process.on('disconnect', () => { void shutdown('parent disconnected'); });

process.on('message', (raw: unknown) => {
  const m = raw as Incoming;
  switch (m?.type) {
    case 'counters':
      send({ type: 'counters', counters: sim.counters() });
      break;
    case 'outcomes':
      send({ type: 'outcomes', summary: sim.outcomeSummary(Number(m.from), Number(m.to)) });
      break;
    case 'stopServer':
      void sim.stopServer().then(() => send({ type: 'serverStopped' }));
      break;
    case 'startServer':
      void sim.startServer().then(() => send({ type: 'serverStarted', serverStartMs: sim.lastServerStartMs }),
        (err: unknown) => send({ type: 'error', message: describeError(err).message }));
      break;
    case 'truth':
      send({ type: 'truth', truth: sim.lineTruth(), counters: sim.counters(), triggerSendErrors: sim.triggerSendErrors,
        lineRunning: sim.lineRunning, pendingParts: sim.pendingParts });
      break;
    case 'startLine':
      sim.startLine(m.rate);
      send({ type: 'lineStarted' });
      break;
    case 'stopLine':
      sim.stopLine();
      send({ type: 'lineStopped', lastPartId: sim.lastPartId });
      break;
    case 'lineTiming':
      send({ type: 'lineTiming', timing: sim.timing.range(Number(m.from), Number(m.to)), unmatchedResults: sim.timing.unmatchedResults });
      break;
    case 'stop':
      void shutdown('stop message');
      break;
    default:
      log.warn({ message: raw }, 'unknown IPC message');
  }
});

try {
  await sim.start();
} catch (err) {
  const { message } = describeError(err);
  log.error({ err: message }, 'PLC simulator failed to start');
  send({ type: 'error', message });
  process.exitCode = 1;
  await sim.stop().catch(() => undefined);
  process.exit(1);
}

log.info({ endpoint: sim.endpoint, photoEyePort: sim.photoEyePort, gateWindowMs, serverStartMs: Math.round(sim.lastServerStartMs ?? 0),
  security: { modes, policies, users: users.map((u) => u.userName), anonymous: !values['disable-anonymous'], explicitTrust: values['explicit-trust'] },
  certificate: sim.certificateFile }, 'PLC simulator running');
send({ type: 'ready', endpoint: sim.endpoint, photoEyePort: sim.photoEyePort, serverStartMs: sim.lastServerStartMs, epoch: sim.epoch });

if (logIntervalMs > 0) {
  logTimer = setInterval(() => log.info({ counters: sim.counters(), pending: sim.pendingParts }, 'PLC counters'), logIntervalMs);
}
