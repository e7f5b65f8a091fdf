/**
 * The connection half of PlcLink (plc-link.ts): node-opcua log routing, the
 * preallocated write bodies, one connect + create-session + contract check
 * attempt, and small helpers. No state of its own: PlcLink owns the retry
 * loop, the generation counter and the timers (plc-link-lifecycle.ts).
 *
 * Every attempt uses a fresh OPCUAClient with `maxRetry: 0` and creates a
 * fresh session (a restarted PLC has forgotten the old one; a node-opcua client
 * whose channel broke is left in state "panic" and cannot connect again).
 *
 * Security (plc-security.ts): unless the config says mode None with an anonymous
 * user, an attempt first reads the PLC's endpoints over a None channel, chooses
 * the endpoint, and checks the PLC's certificate against the station's trusted/
 * folder before it opens the secure channel with that certificate.
 */
import {
  AttributeIds, DataType, DataValue, MessageSecurityMode, OPCUAClient, StatusCodes,
  Variant, WriteValue, coerceNodeId, setErrorLogger, setWarningLogger,
  type ClientSession, type OPCUACertificateManager, type OPCUAClientOptions, type StatusCode, type UserIdentityInfo,
} from 'node-opcua';
import { ConfigInvalidError } from '../core/errors.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { RESULT_WRITE_ORDER, type PlcNodeIds } from './plc-contract.js';
import {
  NONE_ENDPOINT, checkServerCertificate, classifyConnectError, selectEndpoint,
  type ChosenEndpoint, type PlcLinkSecurity, type PlcSecurityConfig, type PlcUserConfig,
} from './plc-security.js';

let opcuaLogsRouted = false;
/**
 * Route node-opcua's own console output (warnings, errors, "Creating default
 * certificate...", the Node 20 PKCS#1 notice) into pino at debug level.
 * Process-wide; called when this module loads.
 */
export function quietNodeOpcua(log: Logger = rootLogger.child({ mod: 'node-opcua' })): void {
  if (opcuaLogsRouted) return;
  opcuaLogsRouted = true;
  const fmt = (args: unknown[]): string => args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  // first argument is node-opcua's caller context { filename, callerline }
  setWarningLogger((_ctx?: unknown, ...args: unknown[]) => log.debug(fmt(args)));
  setErrorLogger((_ctx?: unknown, ...args: unknown[]) => log.debug({ opcuaError: true }, fmt(args)));
}
quietNodeOpcua();

/** Errors after which the session or channel is unusable: the link must be recycled. */
export const SESSION_GONE = /BadSession|BadSecureChannel|BadConnection|BadTcp|BadNotConnected|BadServerHalted|BadShutdown|BadCommunicationError|disconnected|closed|Invalid Channel/i;

/** Pass, Code, Score, Epoch, PartId in RESULT_WRITE_ORDER (the strobe last). */
export type ResultWriteValues = [WriteValue, WriteValue, WriteValue, WriteValue, WriteValue];

export interface PlcWriteValues {
  result: ResultWriteValues;
  heartbeat: [WriteValue];
}

/**
 * Preallocated request bodies. node-opcua copies them into a new WriteRequest
 * synchronously inside session.write(), so mutating them per call is safe even
 * with requests in flight. Saves the NodeId string parse and ~10 option
 * objects per write (measured: ~5 µs of ~60 µs client CPU per write).
 */
export function buildWriteValues(nodeIds: PlcNodeIds): PlcWriteValues {
  const make = (role: keyof PlcNodeIds, dataType: DataType, value: boolean | number): WriteValue => {
    let nodeId;
    try { nodeId = coerceNodeId(nodeIds[role]); } catch (err) {
      throw new ConfigInvalidError(`plc.nodeIds.${role} "${nodeIds[role]}": ${(err as Error).message}`);
    }
    return new WriteValue({ nodeId, attributeId: AttributeIds.Value,
      value: new DataValue({ value: new Variant({ dataType, value }) }) });
  };
  const byRole = {
    pass: make('pass', DataType.Boolean, false),
    code: make('code', DataType.UInt16, 0),
    score: make('score', DataType.Float, 0),
    epoch: make('epoch', DataType.UInt32, 0),
    partId: make('partId', DataType.UInt32, 0),
  };
  return {
    result: RESULT_WRITE_ORDER.map((r) => byRole[r]) as ResultWriteValues,
    heartbeat: [make('heartbeat', DataType.UInt32, 0)],
  };
}

export interface OpenSessionParams {
  endpoint: string;
  certManager: OPCUACertificateManager;
  backoff: { initialDelayMs: number; maxDelayMs: number };
  heartbeatMs: number;
  connectTimeoutMs: number;
  values: PlcWriteValues;
  log: Logger;
  /** checked once connected: true = close what was opened and throw */
  stopped: () => boolean;
  security: Required<PlcSecurityConfig>;
  /** the config's user (for the endpoint choice and messages) and its loaded identity */
  user: PlcUserConfig;
  identity: UserIdentityInfo;
  /** the station's application certificate thumbprint (named when the PLC refuses it) */
  stationThumbprint: string | null;
}

export const CLIENT_APPLICATION_NAME = 'inline-inspector-station';

/** The options every client of the link shares (the discovery client too). */
export function clientOptions(certManager: OPCUACertificateManager, connectTimeoutMs: number,
  backoff: { initialDelayMs: number; maxDelayMs: number }): OPCUAClientOptions {
  return {
    applicationName: CLIENT_APPLICATION_NAME,
    endpointMustExist: false,
    clientCertificateManager: certManager,
    connectionStrategy: { maxRetry: 0, initialDelay: backoff.initialDelayMs, maxDelay: backoff.maxDelayMs },
    transportTimeout: connectTimeoutMs,
    // A result write is ~200 bytes. node-opcua sizes its per-message buffers from these
    // (64 KiB by default): at 100 parts/s that was ~15 MB/s of short-lived Buffers,
    // and the collector ran every ~150 ms on the station's hot-path thread.
    // GetEndpoints answers carry a certificate per endpoint (~1.2 KB each): a few chunks.
    transportSettings: { sendBufferSize: 8192, receiveBufferSize: 8192, maxMessageSize: 1 << 20, maxChunkCount: 128 },
  };
}

/**
 * Read the PLC's endpoints over a None channel (allowed for GetEndpoints even where the
 * PLC offers no None session endpoint), choose one, and check the PLC's certificate.
 */
async function chooseEndpoint(p: OpenSessionParams, track: (c: OPCUAClient) => void): Promise<ChosenEndpoint> {
  if (p.security.mode === 'None' && p.user === 'anonymous') return NONE_ENDPOINT;
  const discovery = OPCUAClient.create({ ...clientOptions(p.certManager, p.connectTimeoutMs, p.backoff), clientName: 'plc-link-discovery' });
  track(discovery);
  let endpoints;
  try {
    await discovery.connect(p.endpoint);
    endpoints = await discovery.getEndpoints();
  } finally {
    await discovery.disconnect().catch(() => undefined);
  }
  const chosen = selectEndpoint(endpoints, p.security, p.user);
  // the folders may have changed since the last attempt (`inspector pki trust` while the station runs)
  await p.certManager.reloadCertificates();
  if (chosen.serverCertificate || chosen.securityMode !== MessageSecurityMode.None) {
    // also with mode None and a user name: the password is encrypted for this certificate
    await checkServerCertificate(p.certManager, chosen.serverCertificate);
  }
  return chosen;
}

/**
 * One (discovery +) connect + create-session + contract-check attempt, bounded
 * by connectTimeoutMs. On failure, closes what was opened (in the background)
 * and throws; security refusals are PlcSecurityError (INSPECTOR_PLC_SECURITY).
 */
export async function openSession(p: OpenSessionParams): Promise<{ client: OPCUAClient; session: ClientSession; security: PlcLinkSecurity }> {
  let client: OPCUAClient | null = null;
  let discovery: OPCUAClient | null = null;
  let session: ClientSession | null = null;
  let chosen: ChosenEndpoint = NONE_ENDPOINT;
  try {
    await withTimeout((async () => {
      chosen = await chooseEndpoint(p, (c) => { discovery = c; });
      if (p.stopped()) throw new Error('stopped while connecting');
      client = OPCUAClient.create({
        ...clientOptions(p.certManager, p.connectTimeoutMs, p.backoff),
        clientName: 'plc-link',
        securityMode: chosen.securityMode,
        securityPolicy: chosen.securityPolicy,
        ...(chosen.serverCertificate ? { serverCertificate: chosen.serverCertificate } : {}),
        keepSessionAlive: false, // the heartbeat writes keep the session alive
        requestedSessionTimeout: Math.max(10_000, p.heartbeatMs * 20),
      });
      await client.connect(p.endpoint);
      session = await client.createSession(p.identity);
      await verifyNodes(session, p.values, p.endpoint, p.log);
    })(), p.connectTimeoutMs);
    if (p.stopped()) throw new Error('stopped while connecting');
  } catch (err) {
    const s = session as ClientSession | null;
    const c = client as OPCUAClient | null;
    const d = discovery as OPCUAClient | null;
    void (s ? s.close().catch(() => undefined) : Promise.resolve())
      .then(() => c?.disconnect()).catch(() => undefined);
    void d?.disconnect().catch(() => undefined);
    throw classifyConnectError(err, p.stationThumbprint, p.user);
  }
  // assigned inside the closure above, which TypeScript's narrowing does not see
  return { client: client as unknown as OPCUAClient, session: session as unknown as ClientSession, security: (chosen as ChosenEndpoint).security };
}

/**
 * The five NodeIds must exist with the contract's data types: a mistyped tag
 * on a real PLC would otherwise fail every write while the link looks "up".
 */
async function verifyNodes(session: ClientSession, values: PlcWriteValues, endpoint: string, log: Logger): Promise<void> {
  const [pass, code, score, epoch, partId] = values.result;
  const expected: [string, WriteValue, DataType][] = [
    ['pass', pass, DataType.Boolean], ['code', code, DataType.UInt16], ['score', score, DataType.Float],
    ['epoch', epoch, DataType.UInt32], ['partId', partId, DataType.UInt32], ['heartbeat', values.heartbeat[0], DataType.UInt32],
  ];
  const read = await session.read(expected.map(([, wv]) => ({ nodeId: wv.nodeId, attributeId: AttributeIds.DataType })));
  const problems: string[] = [];
  expected.forEach(([role, wv, dt], i) => {
    const dv = read[i];
    if (!dv || dv.statusCode.value !== StatusCodes.Good.value) {
      problems.push(`${role} ${wv.nodeId.toString()}: ${dv?.statusCode.toString() ?? 'no answer'}`);
      return;
    }
    const actual = dv.value.value as { namespace?: number; value?: unknown } | null;
    if (actual?.namespace !== 0 || actual.value !== dt) {
      problems.push(`${role} ${wv.nodeId.toString()}: data type ${String(actual?.value)}, expected ${DataType[dt]} (i=${dt})`);
    }
  });
  if (problems.length) {
    const message = `PLC tags do not match the contract: ${problems.join('; ')}`;
    log.error({ endpoint, problems }, message);
    throw new Error(message);
  }
}

/** The PLC's line state and counters, read in one request (plc-status.ts reads them). */
export async function readPlcStatus(session: ClientSession, nodeIds: readonly string[]): Promise<unknown[]> {
  const read = await session.read(nodeIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
  return read.map((dv, i) => {
    if (dv.statusCode.value !== StatusCodes.Good.value) throw new Error(`PLC status ${nodeIds[i]}: ${dv.statusCode.toString()}`);
    return dv.value.value as unknown;
  });
}

export function firstBad(results: StatusCode[] | undefined, expected: number): string | null {
  if (!results || results.length !== expected) return `expected ${expected} results, got ${results?.length ?? 0}`;
  for (const r of results) if (r.value !== StatusCodes.Good.value) return r.toString();
  return null;
}

/** node-opcua's connect errors are multi-line prose: keep the cause. */
export function shortReason(message: string): string {
  const cause = /Err = \((.*)\)/.exec(message);
  return cause?.[1] ?? message.split('\n')[0] ?? message;
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}
