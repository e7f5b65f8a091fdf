/**
 * PlcLink: the station's OPC UA client to the PLC.
 *
 * One WriteRequest per part (Pass, Code, Score, Epoch, PartId: the strobe last,
 * see plc-contract.ts) plus a UInt32 heartbeat counter every `heartbeatMs`.
 *
 * Resynchronisation: on every (re)connect, before the link is called
 * 'connected', it reads the PLC's Line.Epoch and Line.LastPartId and emits
 * 'sync' ({ epoch, lastPartId, previousEpoch }). The part loop then refuses to
 * send results of any other epoch (a PLC that restarted has renumbered its parts).
 * `readStatus()` reads the PLC's counters and outcome log (station/plc-outcomes.ts).
 *
 * Never stalls the caller:
 *  - `writeResult` rejects at once with PlcWriteError (INSPECTOR_PLC_WRITE)
 *    while the link is not 'connected'. It never queues behind a reconnect
 *    (node-opcua's own reconnection DOES queue requests: we do not use it).
 *  - a write that gets no answer within `writeTimeoutMs` rejects, and the link
 *    is recycled (node-opcua's own request timeout cannot go below 5 s).
 *
 * Reconnection is our own loop: every attempt is a fresh client and session
 * (plc-connection.ts `openSession`, which says why). Delays double from
 * `initialDelayMs` up to `maxDelayMs`, with ±20 % jitter.
 *
 * Security (plc-security.ts): `security: { mode, policy }` ('auto' by default:
 * the most secure endpoint the PLC offers, never None unless mode is 'None'),
 * `user` (anonymous, user name + password or file, X.509). The station's
 * application certificate lives in `certificateFolder` (made at the first
 * start, kept); the PLC's certificate must be trusted there explicitly. A
 * refusal is a PlcSecurityError (INSPECTOR_PLC_SECURITY): `lastError` /
 * `lastErrorCode` say why, and the link keeps retrying (a certificate trusted
 * with `inspector pki trust` is used by the next attempt).
 *
 * Ready (the interlock bit a PLC holds the line on): `setReady(true)` once the
 * station can judge parts, `setReady(false)` before it stops. The value is
 * written at once, at every (re)connect and with every heartbeat (one request:
 * Heartbeat, Ready), so a PLC that restarted, or a station restarted after a
 * crash, never leaves a stale Ready behind for long. A PLC without the tag
 * answers a bad status for it: logged once (readyErrors), the link stays up.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, DataType, DataValue, OPCUACertificateManager, OPCUAClient, StatusCodes, Variant, WriteValue, coerceNodeId,
  type ClientSession, type StatusCode, type UserIdentityInfo,
} from 'node-opcua';
import { PlcWriteError, describeError } from '../core/errors.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import {
  OUTCOME_LOG_TAG, defaultPlcCounterNodeIds, plcTags, stringNodeId, type PlcCounters, type PlcNodeIds, type PlcTagKey,
} from './plc-contract.js';
import {
  SESSION_GONE, buildWriteValues, clientOptions, firstBad, openSession, readPlcStatus, shortReason, withTimeout,
  type PlcWriteValues, type ResultWriteValues,
} from './plc-connection.js';
import {
  certificateInfo, describeUser, isPlcSecurityError, loadUserIdentity, resolveSecurity, validateUser,
  type PlcLinkSecurity, type PlcSecurityConfig, type PlcUserConfig,
} from './plc-security.js';

export { quietNodeOpcua } from './plc-connection.js';

export type PlcLinkState = 'connecting' | 'connected' | 'disconnected';

export interface PlcLinkOptions {
  endpoint: string;
  nodeIds: PlcNodeIds;
  /** heartbeat write period, ms (default 500) */
  heartbeatMs?: number;
  /** own PKI folder for this client; default: a temp folder removed by stop() */
  certificateFolder?: string;
  reconnect?: { initialDelayMs: number; maxDelayMs: number };
  /** a write with no answer after this long rejects and recycles the link (default 1000) */
  writeTimeoutMs?: number;
  /** one connect + create-session attempt gives up after this long (default 3000) */
  connectTimeoutMs?: number;
  logger?: Logger;
  /** OPC UA security (default { mode: 'auto', policy: 'auto' }: the most secure endpoint offered; never None unless asked) */
  security?: PlcSecurityConfig;
  /** the user towards the PLC (default 'anonymous'); files are read at start() */
  user?: PlcUserConfig;
}

export interface PlcLinkCounters {
  /** result writes acknowledged Good */
  writes: number;
  /** result writes rejected (link down, bad status, timeout, transport error) */
  writeErrors: number;
  /** successful connections after the first one */
  reconnects: number;
  /** heartbeat writes acknowledged Good */
  heartbeats: number;
}

interface InFlight { t0: number; settle: (err: Error | null) => void }

/** What readStatus() returns: the PLC's counters and its newest outcomes ([PartId, code] pairs). */
export interface PlcStatus { counters: Omit<PlcCounters, 'StationAlive'> & { StationAlive: boolean }; log: Uint32Array }

const STATUS_KEYS = Object.keys(plcTags) as PlcTagKey[];
const STATUS_NODE_IDS = [...STATUS_KEYS.map((k) => defaultPlcCounterNodeIds[k]), stringNodeId(OUTCOME_LOG_TAG.id)];

export class PlcLink extends EventEmitter {
  state: PlcLinkState = 'disconnected';
  readonly counters: PlcLinkCounters = { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 };
  /** why the link last went down or a connection attempt failed ("CODE: message" for coded errors; null until it happens) */
  lastError: string | null = null;
  /** the coded error of the last failed attempt (INSPECTOR_PLC_SECURITY for a security refusal), else null */
  lastErrorCode: string | null = null;
  /** the security of the current connection (null while not connected) */
  security: PlcLinkSecurity | null = null;
  /** the configured security ('auto' resolved per connection) */
  readonly securityConfig: Required<PlcSecurityConfig>;
  /** the station's application certificate (SHA-1 thumbprint), known after start() */
  certificateThumbprint: string | null = null;
  /** security refusals so far (each attempt counts) */
  securityErrors = 0;
  /** the PLC's part-numbering epoch read at the last (re)connect; null before the first */
  epoch: number | null = null;
  /** Line.LastPartId read at the last (re)connect */
  lastPartIdAtSync = 0;
  /** the Station.Ready value the station wants the PLC to see (setReady) */
  ready = false;
  /** Ready writes the PLC answered with a bad status (a PLC without the tag) */
  readyErrors = 0;

  private readonly endpoint: string;
  private readonly heartbeatMs: number;
  private readonly writeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoff: { initialDelayMs: number; maxDelayMs: number };
  private readonly log: Logger;
  private readonly certFolder: string;
  private readonly ownsCertFolder: boolean;
  private certManager: OPCUACertificateManager | null = null;
  private readonly user: PlcUserConfig;
  private identity: UserIdentityInfo | null = null;

  private client: OPCUAClient | null = null;
  private session: ClientSession | null = null;
  /** bumped on every new connection: stale callbacks of an old one are ignored */
  private generation = 0;
  private stopped = false;
  private everConnected = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private heartbeatValue = 0;
  private heartbeatInFlight = false;
  private connecting: Promise<void> | null = null;

  private readonly inFlight = new Set<InFlight>();
  /** preallocated request bodies (see buildWriteValues) */
  private readonly values: PlcWriteValues;
  private readonly resultValues: ResultWriteValues;
  private readonly heartbeatValues: PlcWriteValues['heartbeat'];
  /** Station.Ready, alone (setReady, connect) and after the heartbeat counter in every beat */
  private readonly readyValues: [WriteValue];
  private readonly beatValues: WriteValue[];

  constructor(opts: PlcLinkOptions) {
    super();
    this.endpoint = opts.endpoint;
    this.heartbeatMs = opts.heartbeatMs ?? 500;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 1000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.backoff = opts.reconnect ?? { initialDelayMs: 250, maxDelayMs: 5000 };
    this.log = (opts.logger ?? rootLogger).child({ mod: 'plc-link' });
    if (opts.certificateFolder) {
      this.certFolder = opts.certificateFolder;
      this.ownsCertFolder = false;
    } else {
      this.certFolder = mkdtempSync(join(tmpdir(), 'plc-link-pki-'));
      this.ownsCertFolder = true;
    }
    this.securityConfig = resolveSecurity(opts.security);
    this.user = opts.user ?? 'anonymous';
    validateUser(this.user);
    this.values = buildWriteValues(opts.nodeIds);
    this.resultValues = this.values.result;
    this.heartbeatValues = this.values.heartbeat;
    let readyNode;
    try { readyNode = coerceNodeId(opts.nodeIds.ready); } catch (err) {
      throw new PlcWriteError(`plc.nodeIds.ready "${opts.nodeIds.ready}": ${(err as Error).message}`);
    }
    this.readyValues = [new WriteValue({ nodeId: readyNode, attributeId: AttributeIds.Value,
      value: new DataValue({ value: new Variant({ dataType: DataType.Boolean, value: false }) }) })];
    this.beatValues = [...this.heartbeatValues, this.readyValues[0]];
  }

  /**
   * Tell the PLC whether the station can judge parts now. Resolves once the PLC has it (or at
   * once while the link is down: the value goes out at the next connect and every heartbeat).
   */
  async setReady(ready: boolean): Promise<void> {
    const changed = this.ready !== ready;
    this.ready = ready;
    if (changed) this.log.info({ ready }, ready ? 'Station.Ready set: the PLC may run the line' : 'Station.Ready cleared: the PLC holds the line');
    const session = this.session;
    if (this.state !== 'connected' || !session) return;
    await this.writeReady(session);
  }

  private async writeReady(session: ClientSession): Promise<void> {
    this.readyValues[0].value.value.value = this.ready;
    try {
      const results = await withTimeout(session.write(this.readyValues), this.writeTimeoutMs);
      const r = results[0];
      if (r && r.value !== StatusCodes.Good.value) this.noteReadyError(r.toString());
    } catch (err) {
      this.log.warn({ err: (err as Error).message, ready: this.ready }, 'Station.Ready write failed (sent again with the next heartbeat)');
    }
  }

  private noteReadyError(status: string): void {
    if (this.readyErrors++ === 0) this.log.warn({ status }, 'the PLC refused Station.Ready (no such tag?): it cannot interlock on the station');
  }

  /** Resolves after the first connection attempt (successful or not); retries go on in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    this.identity ??= loadUserIdentity(this.user); // a missing password file is a config error, here
    if (!this.certManager) {
      // never trust a PLC automatically: an unknown certificate lands in rejected/ (`inspector pki trust`)
      const cm = new OPCUACertificateManager({
        rootFolder: this.certFolder, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true,
      });
      await this.ensureApplicationCertificate(cm);
      this.certManager = cm;
    }
    this.heartbeatTimer ??= setInterval(() => this.beat(), this.heartbeatMs);
    const tick = Math.max(10, Math.min(100, this.writeTimeoutMs / 4));
    this.watchdogTimer ??= setInterval(() => this.sweepTimeouts(), tick);
    await this.connectOnce();
  }

  /**
   * One WriteRequest: Pass, Code, Score, PartId (strobe last). Resolves with the
   * round-trip in ms; rejects with PlcWriteError at once if the link is down.
   */
  writeResult(partId: number, epoch: number, pass: boolean, code: number, score: number): Promise<number> {
    const session = this.session;
    if (this.state !== 'connected' || session === null) {
      this.counters.writeErrors++;
      return Promise.reject(new PlcWriteError(`link ${this.state}`));
    }
    if (!(partId >= 0 && partId <= 0xffffffff && Number.isInteger(partId))
      || !(code >= 0 && code <= 0xffff && Number.isInteger(code))
      || !(epoch >= 0 && epoch <= 0xffffffff && Number.isInteger(epoch))) {
      this.counters.writeErrors++;
      return Promise.reject(new PlcWriteError(`invalid result partId=${partId} epoch=${epoch} code=${code}`));
    }
    const v = this.resultValues;
    v[0].value.value.value = pass === true;
    v[1].value.value.value = code;
    v[2].value.value.value = score;
    v[3].value.value.value = epoch;
    v[4].value.value.value = partId;
    const gen = this.generation;
    return new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const entry: InFlight = {
        t0,
        settle: (err) => {
          if (!this.inFlight.delete(entry)) return; // already settled (timeout / link down)
          if (err) { this.counters.writeErrors++; reject(err); return; }
          this.counters.writes++;
          resolve(performance.now() - t0);
        },
      };
      this.inFlight.add(entry);
      try {
        session.write(v, (err: Error | null, results?: StatusCode[]) => {
          const bad = err ? null : firstBad(results, 5);
          if (err) {
            entry.settle(new PlcWriteError(err.message));
            this.onRequestError(gen, err.message);
          } else if (bad) {
            entry.settle(new PlcWriteError(`partId ${partId}: ${bad}`));
            this.onRequestError(gen, bad);
          } else {
            entry.settle(null);
          }
        });
      } catch (err) { // encoding errors are thrown synchronously
        entry.settle(new PlcWriteError((err as Error).message));
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.retryTimer = this.heartbeatTimer = this.watchdogTimer = null;
    await this.connecting?.catch(() => undefined);
    const { client, session } = this;
    this.generation++;
    this.client = null;
    this.session = null;
    this.failInFlight('link stopped');
    this.security = null;
    this.setState('disconnected');
    if (session) await withTimeout(session.close(), 1000).catch(() => undefined);
    if (client) await withTimeout(client.disconnect(), 1000).catch(() => undefined);
    if (this.certManager) { await this.certManager.dispose().catch(() => undefined); this.certManager = null; }
    if (this.ownsCertFolder) rmSync(this.certFolder, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- internals

  /** The station's application certificate: made at the first start (a few seconds of key generation), then kept. */
  private async ensureApplicationCertificate(cm: OPCUACertificateManager): Promise<void> {
    await cm.initialize();
    const client = OPCUAClient.create({ ...clientOptions(cm, this.connectTimeoutMs, this.backoff), clientName: 'plc-link-certificate' });
    await client.createDefaultCertificate();
    try {
      const info = certificateInfo(readFileSync(client.certificateFile));
      this.certificateThumbprint = info.thumbprint;
      this.log.info({ certificate: client.certificateFile, thumbprint: info.thumbprint, notAfter: info.notAfter.toISOString(),
        security: this.securityConfig, user: describeUser(this.user) }, 'station OPC UA application certificate');
    } catch (err) {
      this.log.warn({ err: (err as Error).message, certificate: client.certificateFile }, 'station certificate unreadable');
    }
  }

  private setState(s: PlcLinkState): void {
    if (this.state === s) return;
    this.state = s;
    this.log.info({ state: s, endpoint: this.endpoint }, 'plc link state');
    this.emit('state', s);
  }

  private connectOnce(): Promise<void> {
    if (this.connecting) return this.connecting;
    this.connecting = this.doConnect().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    if (this.stopped || !this.certManager) return;
    this.setState('connecting');
    let client: OPCUAClient;
    let session: ClientSession;
    let security: PlcLinkSecurity;
    try {
      ({ client, session, security } = await openSession({
        endpoint: this.endpoint, certManager: this.certManager, backoff: this.backoff,
        heartbeatMs: this.heartbeatMs, connectTimeoutMs: this.connectTimeoutMs,
        values: this.values, log: this.log, stopped: () => this.stopped,
        security: this.securityConfig, user: this.user, identity: this.identity!, stationThumbprint: this.certificateThumbprint,
      }));
    } catch (err) {
      if (this.stopped) return;
      const coded = isPlcSecurityError(err);
      if (coded) this.securityErrors++;
      // before the state event: the station's PLC_LINK_DOWN alarm reads lastError
      this.noteError(err);
      this.setState('disconnected');
      this.scheduleRetry((err as Error).message, coded);
      return;
    }
    this.security = security;
    const gen = ++this.generation;
    this.client = client;
    this.session = session;
    this.attempt = 0;
    client.on('connection_lost', () => this.linkDown(gen, 'connection lost'));
    client.on('close', () => this.linkDown(gen, 'connection closed'));
    (session as unknown as EventEmitter).on('session_closed', () => this.linkDown(gen, 'session closed'));
    await this.warmUp(session);
    try {
      await this.resync(session);
    } catch (err) { // the PLC answers but not its line state: not a usable link
      this.linkDown(gen, `resync failed: ${(err as Error).message}`);
      return;
    }
    await this.writeReady(session); // a restarted PLC (or one a crashed station left Ready) learns the truth now
    if (this.everConnected) this.counters.reconnects++;
    this.everConnected = true;
    this.log.info({ endpoint: this.endpoint, security: security.mode, policy: security.policy, user: describeUser(this.user) },
      security.mode === 'None' ? 'plc link security None (configured): unsigned and unencrypted' : 'plc link secured');
    this.setState('connected');
  }

  /**
   * Exercise the result-write path before the link is called connected: the
   * first requests JIT-compile node-opcua's encoders (tens of ms), which would
   * otherwise land on the first parts. Pass, Code and Score without the PartId
   * strobe are latched by nothing, so the PLC sees no result.
   */
  private async warmUp(session: ClientSession): Promise<void> {
    const noStrobe = this.values.result.slice(0, 3);
    try {
      for (let i = 0; i < 20 && !this.stopped; i++) await session.write(noStrobe);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'plc write warm-up failed');
    }
  }

  /** Read the PLC's Line.Epoch and Line.LastPartId before any result is sent on this connection. */
  private async resync(session: ClientSession): Promise<void> {
    const [epoch, lastPartId] = await withTimeout(readPlcStatus(session,
      [defaultPlcCounterNodeIds.Epoch, defaultPlcCounterNodeIds.LastPartId]), this.connectTimeoutMs) as [number, number];
    const previousEpoch = this.epoch;
    this.epoch = epoch;
    this.lastPartIdAtSync = lastPartId;
    this.log.info({ epoch, lastPartId, previousEpoch }, previousEpoch !== null && previousEpoch !== epoch
      ? 'PLC part numbering changed (new epoch): resynchronised' : 'PLC part numbering read');
    this.emit('sync', { epoch, lastPartId, previousEpoch });
  }

  /**
   * The PLC's counters, line state and newest outcomes in ONE ReadRequest (so the
   * log and its count agree). Off the hot path: the station calls it a few times
   * a second from plc-outcomes.ts. Rejects while the link is down.
   */
  async readStatus(): Promise<PlcStatus> {
    const session = this.session;
    if (this.state !== 'connected' || !session) throw new PlcWriteError(`link ${this.state}`);
    const values = await withTimeout(readPlcStatus(session, STATUS_NODE_IDS), this.writeTimeoutMs);
    const counters = {} as Record<string, unknown>;
    STATUS_KEYS.forEach((k, i) => { counters[k] = values[i]; });
    const raw = values[STATUS_KEYS.length];
    const log = raw instanceof Uint32Array ? raw : Uint32Array.from((raw as ArrayLike<number> | null) ?? []);
    return { counters: counters as unknown as PlcStatus['counters'], log };
  }

  /** lastError / lastErrorCode from a failed attempt ("CODE: message" for coded errors). */
  private noteError(err: unknown): void {
    const { code, message } = describeError(err);
    const coded = code.startsWith('INSPECTOR_') && code !== 'INSPECTOR_UNEXPECTED';
    this.lastErrorCode = coded ? code : null;
    this.lastError = coded ? `${code}: ${message}` : message;
  }

  private scheduleRetry(reason: string, securityRefusal = false): void {
    if (this.stopped || this.retryTimer) return;
    const { initialDelayMs, maxDelayMs } = this.backoff;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.attempt, 30));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt++;
    // warn on the first failure of an outage and every 10th retry; the rest at debug
    const first = this.attempt === 1 || this.attempt % 10 === 0;
    const level = first ? (securityRefusal ? 'error' : 'warn') : 'debug';
    this.log[level]({ endpoint: this.endpoint, reason: securityRefusal ? this.lastError : shortReason(reason), retryInMs: delay, attempt: this.attempt },
      securityRefusal ? 'plc link refused by security, retrying' : 'plc link down, retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connectOnce();
    }, delay);
  }

  /** The connection of generation `gen` is unusable: drop it and reconnect. */
  private linkDown(gen: number, reason: string): void {
    if (gen !== this.generation || this.stopped || !this.client) return;
    const { client, session } = this;
    this.generation++;
    this.client = null;
    this.session = null;
    this.security = null;
    this.heartbeatInFlight = false;
    this.lastError = reason; // before the state event (the station's alarm reads it)
    this.lastErrorCode = null;
    this.setState('disconnected');
    this.failInFlight(reason);
    void (session ? withTimeout(session.close(), 500).catch(() => undefined) : Promise.resolve())
      .then(() => client.disconnect()).catch(() => undefined);
    this.scheduleRetry(reason);
  }

  private onRequestError(gen: number, message: string): void {
    if (SESSION_GONE.test(message)) this.linkDown(gen, message);
  }

  private failInFlight(reason: string): void {
    for (const e of [...this.inFlight]) e.settle(new PlcWriteError(reason));
  }

  /** Reject writes older than writeTimeoutMs; a PLC that does not answer is a broken link. */
  private sweepTimeouts(): void {
    const now = performance.now();
    let timedOut = false;
    for (const e of this.inFlight) { // insertion order: oldest first
      if (now - e.t0 < this.writeTimeoutMs) break;
      e.settle(new PlcWriteError(`no answer within ${this.writeTimeoutMs} ms`));
      timedOut = true;
    }
    if (timedOut) this.linkDown(this.generation, 'write timed out');
  }

  private beat(): void {
    const session = this.session;
    if (this.state !== 'connected' || !session || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    this.heartbeatValue = (this.heartbeatValue + 1) >>> 0;
    this.heartbeatValues[0].value.value.value = this.heartbeatValue;
    this.readyValues[0].value.value.value = this.ready;
    const gen = this.generation;
    const t0 = performance.now();
    const timer = setTimeout(() => this.linkDown(gen, 'heartbeat timed out'), this.writeTimeoutMs);
    session.write(this.beatValues, (err: Error | null, results?: StatusCode[]) => {
      clearTimeout(timer);
      if (gen !== this.generation) return;
      this.heartbeatInFlight = false;
      // the heartbeat decides the link; a refused Ready is the PLC's missing tag, not a broken link
      const readyStatus = results?.[1];
      if (readyStatus && readyStatus.value !== StatusCodes.Good.value) this.noteReadyError(readyStatus.toString());
      const bad = err ? err.message : firstBad(results?.slice(0, 1), 1);
      if (bad) {
        this.log.warn({ err: bad }, 'heartbeat write failed');
        this.onRequestError(gen, bad);
        return;
      }
      this.counters.heartbeats++;
      const ms = performance.now() - t0;
      if (ms > this.heartbeatMs) this.log.warn({ ms }, 'slow heartbeat write');
    });
  }
}
