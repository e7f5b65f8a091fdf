/**
 * The connection lifecycle of PlcLink (plc-link.ts): start and stop, one connect
 * attempt after another (plc-connection.ts `openSession`) with backoff, the resync
 * before a connection is called 'connected', and dropping a connection that broke.
 * Also the station's application certificate, made at the first start.
 *
 * Separate from the writes that use the connection (plc-link-heartbeat.ts: heartbeat
 * and Station.Ready; plc-link.ts: one result per part) because this is the state
 * machine they all depend on: it owns the client, the session and the generation
 * counter, and it calls back into those layers (the hooks at the end of the class)
 * where a connection comes up or goes down.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager, OPCUAClient, type ClientSession, type UserIdentityInfo } from 'node-opcua';
import { describeError } from '../core/errors.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { defaultPlcCounterNodeIds } from './plc-contract.js';
import {
  SESSION_GONE, buildWriteValues, clientOptions, openSession, readPlcStatus, shortReason, withTimeout, type PlcWriteValues,
} from './plc-connection.js';
import {
  certificateInfo, describeUser, isPlcSecurityError, loadUserIdentity, resolveSecurity, validateUser,
  type PlcLinkSecurity, type PlcSecurityConfig, type PlcUserConfig,
} from './plc-security.js';
// types only: PlcLink's public types stay with it in plc-link.ts (no runtime import cycle)
import type { PlcLinkCounters, PlcLinkOptions, PlcLinkState } from './plc-link.js';

export abstract class PlcLinkLifecycle extends EventEmitter {
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

  private readonly endpoint: string;
  protected readonly heartbeatMs: number;
  protected readonly writeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoff: { initialDelayMs: number; maxDelayMs: number };
  protected readonly log: Logger;
  private readonly certFolder: string;
  private readonly ownsCertFolder: boolean;
  private certManager: OPCUACertificateManager | null = null;
  private readonly user: PlcUserConfig;
  private identity: UserIdentityInfo | null = null;

  private client: OPCUAClient | null = null;
  protected session: ClientSession | null = null;
  /** bumped on every new connection: stale callbacks of an old one are ignored */
  protected generation = 0;
  private stopped = false;
  private everConnected = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;

  /** preallocated request bodies (see buildWriteValues) */
  protected readonly values: PlcWriteValues;

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
  protected linkDown(gen: number, reason: string): void {
    if (gen !== this.generation || this.stopped || !this.client) return;
    const { client, session } = this;
    this.generation++;
    this.client = null;
    this.session = null;
    this.security = null;
    this.clearHeartbeatInFlight();
    this.lastError = reason; // before the state event (the station's alarm reads it)
    this.lastErrorCode = null;
    this.setState('disconnected');
    this.failInFlight(reason);
    void (session ? withTimeout(session.close(), 500).catch(() => undefined) : Promise.resolve())
      .then(() => client.disconnect()).catch(() => undefined);
    this.scheduleRetry(reason);
  }

  protected onRequestError(gen: number, message: string): void {
    if (SESSION_GONE.test(message)) this.linkDown(gen, message);
  }

  // ------------------------------------------------ what the layers above provide

  /** One heartbeat + Ready write, every heartbeatMs while started (plc-link-heartbeat.ts). */
  protected abstract beat(): void;
  /** Station.Ready to the PLC now, at every connect before it is called 'connected' (plc-link-heartbeat.ts). */
  protected abstract writeReady(session: ClientSession): Promise<void>;
  /** A beat in flight on a dropped connection will never be answered (plc-link-heartbeat.ts). */
  protected abstract clearHeartbeatInFlight(): void;
  /** Reject result writes older than writeTimeoutMs, every watchdog tick (plc-link.ts). */
  protected abstract sweepTimeouts(): void;
  /** Reject every result write in flight: the link went down or stopped (plc-link.ts). */
  protected abstract failInFlight(reason: string): void;
}
