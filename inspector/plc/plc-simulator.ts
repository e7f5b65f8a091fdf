/**
 * PlcSimulator: the line's PLC, standing in for a real one.
 *
 * PLC logic (gate-windows.ts; runs whether or not the OPC UA server is up):
 * parts are numbered by the PLC where they are triggered, within an epoch that
 * is new on every start. The trigger is the simulated line's own clock
 * (`line.rate` parts/s, independent of the station), an external photo-eye
 * (one UDP datagram on 127.0.0.1:photoEyePort) or `partArrived()`. Each part
 * holds a reject-gate window of `gateWindowMs` and is a reject unless a valid
 * accept for its (Epoch, PartId) arrives inside it. With `line.triggerPort` the
 * PLC triggers the camera for every part with a trigger telegram carrying
 * (Epoch, PartId, item) (trigger-telegram.ts).
 *
 * OPC UA: the address space is built from plc-contract.ts. Results are latched
 * per WriteRequest by a hook on `server.engine.write`, which sees the whole
 * request before node-opcua applies it variable by variable: node-opcua keeps
 * the order inside one request but interleaves pipelined requests (measured:
 * 20 concurrent 3-value writes arrive as A0..A19, B0..B19, C0..C19), so a
 * per-variable `set` hook cannot know which Pass belongs to which PartId.
 * `stopServer()` / `startServer()` stop and rebuild only the server (a
 * node-opcua server cannot be restarted after shutdown) on the same port.
 *
 * Security: the endpoints a PLC offers, None + Sign + SignAndEncrypt with
 * Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss by default
 * (`security.modes` / `security.policies` narrow them), anonymous access unless
 * `allowAnonymous: false`, optional user names and passwords. The server's PKI
 * is `<certificateFolder>/server` (its certificate: `certificateFile`); client
 * certificates are accepted automatically unless `autoAcceptClientCertificates`
 * is false (then `inspector pki trust --folder <certificateFolder>/server`).
 * `lastWrite` says over which security and as which user the last result came.
 *
 * Ready interlock (`readyInterlock: true`): as a real line interlocks on a vision
 * system's Ready/Online bit, the line runs only while the station has written
 * Station.Ready = true AND its heartbeat is alive (Plc.StationReady). While not
 * ready the line clock holds (no part is fired, none is owed afterwards: the
 * conveyor stopped), and a part the photo-eye sees anyway is rejected at once,
 * untriggered, as RejectedNotReady (never a timeout or a late result). Off by
 * default: tests that drive the PLC without a station keep the old behaviour.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy,
  StatusCodes, Variant, VariantArrayType, nodesets, type ISessionContext, type UAObject, type WriteValue,
} from 'node-opcua';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import {
  PLC_NAMESPACE_URI, plcTags, stationTags, type PlcCounters, type PlcDataType, type PlcTagKey,
  type StationTagKey,
} from './plc-contract.js';
import { GateWindows, type OutcomeSummary, type PartOutcome } from './gate-windows.js';
import { LineTiming } from './line-timing.js';
import { encodeTrigger, TRIGGER_BYTES } from './trigger-telegram.js';
import { OUTCOME_LOG_TAG } from './plc-contract.js';
import { quietNodeOpcua } from './plc-connection.js';

export type { OutcomeSummary, PartOutcome } from './gate-windows.js';

quietNodeOpcua();

export interface PlcSimulatorOptions {
  port: number;
  /** reject-gate window per part, ms (default 100) */
  gateWindowMs?: number;
  /** UDP photo-eye port on 127.0.0.1; 0 = any free port (see `photoEyePort`); absent = no socket */
  photoEyePort?: number;
  certificateFolder?: string;
  logger?: Logger;
  /** expected station heartbeat period (default 500 ms) */
  heartbeatIntervalMs?: number;
  /** StationAlive goes false after factor × interval without a change (default 3) */
  heartbeatTimeoutFactor?: number;
  /** outcomes kept for outcomes() (default 100 000, oldest dropped) */
  maxOutcomes?: number;
  /** part-numbering epoch (default: a random non-zero UInt32, new on every start as a PLC restart gives) */
  epoch?: number;
  /** the simulated line: its own part clock and the camera trigger */
  line?: LineOptions;
  /** the OPC UA endpoints and users offered (default: every mode and policy, anonymous allowed, no users) */
  security?: PlcSimSecurityOptions;
  /** hold the line and reject arriving parts while the station is not Ready (Station.Ready + heartbeat); default false */
  readyInterlock?: boolean;
}

export type PlcSimSecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';
export type PlcSimSecurityPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export interface PlcSimSecurityOptions {
  /** default ['None', 'Sign', 'SignAndEncrypt'] */
  modes?: readonly PlcSimSecurityMode[];
  /** the policies of the Sign / SignAndEncrypt endpoints (default all three) */
  policies?: readonly PlcSimSecurityPolicy[];
  /** default true */
  allowAnonymous?: boolean;
  /** user name + password accounts (default none) */
  users?: readonly { userName: string; password: string }[];
  /** accept any client certificate (default true, a test PLC); false: only those in <certificateFolder>/server/trusted */
  autoAcceptClientCertificates?: boolean;
}

/** What the simulator saw of the last result request: the channel's security and the session's user. */
export interface PlcSimWriteSecurity { mode: string; policy: string; user: string }

export interface LineOptions {
  /** parts per second fired by the line's own clock; absent or 0: no clock (photo-eye or partArrived() only) */
  rate?: number;
  /** UDP port of the camera's trigger input on triggerHost: every part is sent there as a trigger telegram */
  triggerPort?: number;
  triggerHost?: string;
  /** number of distinct physical parts on the line (the replay folder's images): item = (PartId - 1) % items */
  items?: number;
  /** start the clock in start() (default true) */
  autoStart?: boolean;
  /** stop the clock after this many parts (default: never) */
  maxParts?: number;
  /** the items that are defective parts (simulation truth: lets a soak count escapes) */
  defectiveItems?: readonly number[];
}

const OPC_TYPE: Record<PlcDataType, DataType> = {
  Boolean: DataType.Boolean, UInt16: DataType.UInt16, UInt32: DataType.UInt32, Float: DataType.Float,
};

export class PlcSimulator {
  readonly gateWindowMs: number;
  /** duration of the last OPC UA server start (construct + initialize + listen), ms */
  lastServerStartMs: number | null = null;

  private readonly port: number;
  private readonly log: Logger;
  private readonly certFolder: string;
  private readonly ownsCertFolder: boolean;
  private readonly heartbeatTimeoutMs: number;
  private readonly photoEyeWanted: number | undefined;

  private server: OPCUAServer | null = null;
  private starting: Promise<void> | null = null;
  private socket: dgram.Socket | null = null;
  private housekeeping: NodeJS.Timeout | null = null;
  private readonly gates: GateWindows;

  /** last values written to the station's variables (read-back only, never latched) */
  private readonly registers: Record<StationTagKey, boolean | number> = {
    pass: false, code: 0, score: 0, epoch: 0, partId: 0, heartbeat: 0, ready: false,
  };
  /** hold the line while the station is not ready (see the header) */
  readonly readyInterlock: boolean;
  private heldReported = false;
  /** times the line clock held because the station was not ready (edges, not ticks) */
  lineHolds = 0;
  private lastHeartbeatChangeAt: number | null = null;
  private aliveReported = false;
  private readonly line: LineOptions;
  private triggerSocket: dgram.Socket | null = null;
  private lineTimer: NodeJS.Timeout | null = null;
  /** trigger telegrams the socket could not send (counted, the part still counts at the PLC) */
  triggerSendErrors = 0;
  /**
   * Per part, on CLOCK_MONOTONIC (shared with the station's process): photo-eye fired, result latched
   * (line-timing.ts). The benchmark's headline photo-eye → latched-at-the-PLC comes from here.
   */
  readonly timing = new LineTiming();
  /** security and user of the last request that carried a result strobe (null before the first) */
  lastWrite: PlcSimWriteSecurity | null = null;
  private readonly security: Required<Omit<PlcSimSecurityOptions, 'users'>> & { users: readonly { userName: string; password: string }[] };

  constructor(opts: PlcSimulatorOptions) {
    this.port = opts.port;
    this.gateWindowMs = opts.gateWindowMs ?? 100;
    this.photoEyeWanted = opts.photoEyePort;
    this.log = (opts.logger ?? rootLogger).child({ mod: 'plc-sim' });
    this.heartbeatTimeoutMs = (opts.heartbeatIntervalMs ?? 500) * (opts.heartbeatTimeoutFactor ?? 3);
    this.line = opts.line ?? {};
    this.readyInterlock = opts.readyInterlock ?? false;
    this.gates = new GateWindows(this.gateWindowMs, opts.maxOutcomes ?? 100_000, this.log, opts.epoch ?? randomInt(1, 0xffffffff));
    if (this.line.defectiveItems) {
      const bad = new Set(this.line.defectiveItems);
      this.gates.isDefective = (item) => bad.has(item);
    }
    this.ownsCertFolder = !opts.certificateFolder;
    this.certFolder = opts.certificateFolder ?? mkdtempSync(join(tmpdir(), 'plc-sim-pki-'));
    const sec = opts.security ?? {};
    this.security = {
      modes: sec.modes ?? ['None', 'Sign', 'SignAndEncrypt'],
      policies: sec.policies ?? ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'],
      allowAnonymous: sec.allowAnonymous ?? true,
      users: sec.users ?? [],
      autoAcceptClientCertificates: sec.autoAcceptClientCertificates ?? true,
    };
    if (this.security.modes.length === 0) throw new Error('PlcSimulator: security.modes is empty');
    if (this.security.modes.some((m) => m !== 'None') && this.security.policies.length === 0) {
      throw new Error('PlcSimulator: Sign / SignAndEncrypt need at least one policy');
    }
  }

  /** The server's PKI folder (`inspector pki … --folder`): trusted/ and rejected/ client certificates. */
  get serverPkiFolder(): string { return join(this.certFolder, 'server'); }
  /** The server's certificate (PEM), the file an operator gives the station (`inspector pki trust FILE`). */
  get certificateFile(): string { return join(this.serverPkiFolder, 'own', 'certs', 'certificate.pem'); }

  get endpoint(): string { return `opc.tcp://127.0.0.1:${this.port}`; }
  /** bound photo-eye UDP port, or null without a photo-eye socket */
  get photoEyePort(): number | null { return this.socket ? this.socket.address().port : null; }
  get serverRunning(): boolean { return this.server !== null; }

  async start(): Promise<void> {
    if (this.photoEyeWanted !== undefined && !this.socket) {
      const socket = dgram.createSocket('udp4');
      socket.on('message', () => { this.partArrived(); });
      socket.on('error', (err) => this.log.error({ err }, 'photo-eye socket error'));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(this.photoEyeWanted, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
      });
      this.socket = socket;
    }
    if (this.line.triggerPort !== undefined && !this.triggerSocket) {
      const ts = dgram.createSocket('udp4');
      ts.on('error', (err) => this.log.error({ err }, 'trigger socket error'));
      this.triggerSocket = ts;
    }
    this.housekeeping ??= setInterval(() => this.houseKeep(), Math.max(10, Math.min(100, this.gateWindowMs / 2)));
    await this.startServer();
    if ((this.line.rate ?? 0) > 0 && this.line.autoStart !== false) this.startLine();
  }

  /** Station.Ready written true and the heartbeat alive: the vision system can judge parts. */
  stationReady(): boolean { return this.registers.ready === true && this.stationAlive(); }

  /** the last Station.Ready value the station wrote (heartbeat aside) */
  get readyWritten(): boolean { return this.registers.ready === true; }

  /** the line clock is holding now because the station is not ready */
  get lineHeld(): boolean { return this.heldReported; }

  /** Part-numbering epoch of this PLC run. */
  get epoch(): number { return this.gates.epoch; }
  get lastPartId(): number { return this.gates.lastPartId; }
  get lineRunning(): boolean { return this.lineTimer !== null; }

  /**
   * Start the line's own part clock: part n is due at t0 + n / rate, whatever the
   * station does (a station that falls behind loses parts, it never slows the line).
   * A timer that fires late fires the parts that are due, each with its own trigger.
   */
  startLine(rate = this.line.rate ?? 0): void {
    if (this.lineTimer || !(rate > 0)) return;
    const periodMs = 1000 / rate;
    let t0 = performance.now();
    let n = 0;
    const tick = (): void => {
      const now = performance.now();
      if (this.readyInterlock && !this.stationReady()) {
        // the conveyor stops: nothing is fired and nothing is owed when it runs again
        t0 = now - n * periodMs;
        this.noteHold(true);
        this.lineTimer = setTimeout(tick, Math.min(periodMs, 20));
        return;
      }
      this.noteHold(false);
      while (t0 + n * periodMs <= now) {
        if (this.line.maxParts !== undefined && this.gates.lastPartId >= this.line.maxParts) { this.stopLine(); return; }
        n++;
        this.partArrived();
      }
      this.lineTimer = setTimeout(tick, Math.max(0, t0 + n * periodMs - performance.now()));
    };
    this.lineTimer = setTimeout(tick, 0);
    this.log.info({ rate, epoch: this.epoch }, 'line clock started');
  }

  stopLine(): void {
    if (this.lineTimer) clearTimeout(this.lineTimer);
    this.lineTimer = null;
    this.noteHold(false);
  }

  private noteHold(held: boolean): void {
    if (held === this.heldReported) return;
    this.heldReported = held;
    if (held) this.lineHolds++;
    this.log.info({ stationReady: !held, ready: this.registers.ready, heartbeat: this.stationAlive() },
      held ? 'line held: the vision system is not ready' : 'line runs: the vision system is ready');
  }

  async stop(): Promise<void> {
    this.stopLine();
    await this.stopServer();
    const ts = this.triggerSocket;
    this.triggerSocket = null;
    if (ts) await new Promise<void>((resolve) => ts.close(() => resolve()));
    if (this.housekeeping) clearInterval(this.housekeeping);
    this.gates.stop();
    this.housekeeping = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (this.ownsCertFolder) rmSync(this.certFolder, { recursive: true, force: true });
  }

  /** Start (again) only the OPC UA server, same port, fresh address space. */
  startServer(): Promise<void> {
    if (this.server) return Promise.resolve();
    this.starting ??= this.buildServer().finally(() => { this.starting = null; });
    return this.starting;
  }

  private async buildServer(): Promise<void> {
    const t0 = performance.now();
    const sec = this.security;
    const users = sec.users;
    const offersNone = sec.modes.includes('None');
    const server = new OPCUAServer({
      port: this.port,
      host: '127.0.0.1',
      hostname: '127.0.0.1',
      serverCertificateManager: new OPCUACertificateManager({
        rootFolder: this.serverPkiFolder, automaticallyAcceptUnknownCertificate: sec.autoAcceptClientCertificates }),
      userCertificateManager: new OPCUACertificateManager({
        rootFolder: join(this.certFolder, 'user'), automaticallyAcceptUnknownCertificate: sec.autoAcceptClientCertificates }),
      nodeset_filename: [nodesets.standard], // standard nodeset only: ~0.6 s to load
      serverInfo: { applicationUri: PLC_NAMESPACE_URI, productUri: PLC_NAMESPACE_URI,
        applicationName: { text: 'inline-inspector PLC simulator' } },
      securityModes: sec.modes.map((m) => MessageSecurityMode[m]),
      securityPolicies: [...(offersNone ? [SecurityPolicy.None] : []), ...sec.policies.map((p) => SecurityPolicy[p])],
      allowAnonymous: sec.allowAnonymous,
      ...(users.length ? { userManager: { isValidUser: (u: string, p: string) => users.some((x) => x.userName === u && x.password === p) } } : {}),
      // without a None endpoint, a restricted None endpoint still answers GetEndpoints (clients read the policies there)
      disableDiscovery: offersNone,
    });
    try {
      await server.initialize();
      this.buildAddressSpace(server);
      this.hookWrites(server);
      await server.start();
    } catch (err) {
      await server.shutdown(0).catch(() => undefined);
      throw err;
    }
    this.server = server;
    this.lastServerStartMs = performance.now() - t0;
    this.log.info({ endpoint: this.endpoint, startMs: Math.round(this.lastServerStartMs) }, 'PLC OPC UA server listening');
  }

  /** Stop only the OPC UA server; photo-eye, gate timers and counters keep running. */
  async stopServer(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const server = this.server;
    if (!server) return;
    this.server = null;
    await server.shutdown(0);
    this.log.info({ endpoint: this.endpoint }, 'PLC OPC UA server stopped');
  }

  /** The photo-eye saw a part: number it, open its gate window, trigger the camera. Returns its PartId. */
  partArrived(): number {
    const items = this.line.items;
    const next = this.gates.lastPartId + 1;
    const item = items && items > 0 ? (next - 1) % items : next - 1;
    // fail-safe: a part that comes while the vision system cannot judge it is rejected at once, untriggered
    if (this.readyInterlock && !this.stationReady()) return this.gates.partNotReady(item);
    const firedNs = process.hrtime.bigint(); // the photo-eye edge: the camera trigger leaves right after
    const id = this.gates.partArrived(item);
    this.timing.photoEyeFired(id, firedNs);
    const ts = this.triggerSocket;
    if (ts && this.line.triggerPort !== undefined) {
      // a buffer per telegram: dgram sends asynchronously and does not copy, so a buffer reused by the
      // next part (the clock fires due parts in a burst after a late timer) would send that part's id twice
      ts.send(encodeTrigger({ epoch: this.epoch, partId: id, item }, Buffer.allocUnsafe(TRIGGER_BYTES)), this.line.triggerPort,
        this.line.triggerHost ?? '127.0.0.1', (err) => { if (err) this.triggerSendErrors++; });
    }
    return id;
  }

  counters(): PlcCounters {
    return { ...this.gates.counters, Epoch: this.epoch, LastPartId: this.gates.lastPartId, OutcomeCount: this.gates.outcomeCount,
      StationAlive: this.stationAlive(), StationReady: this.stationReady(), GateWindowMs: this.gateWindowMs };
  }

  /** Simulation truth: defective parts seen and accepted (escapes), good parts rejected. */
  lineTruth(): GateWindows['truth'] { return { ...this.gates.truth }; }

  /** The outcome log as the station reads it (Plc.Outcomes.Log). */
  outcomeLog(): Uint32Array { return this.gates.outcomeLog(); }

  /** Snapshot of the decided parts (last maxOutcomes), PartId → outcome. */
  outcomes(): Map<number, PartOutcome> { return this.gates.outcomes(); }

  /** Summary over PartIds [from, to] (inclusive). Parts evicted from the outcome history are not counted. */
  outcomeSummary(from: number, to: number): OutcomeSummary { return this.gates.outcomeSummary(from, to); }

  /** Parts whose window is still open. */
  get pendingParts(): number { return this.gates.pendingParts; }

  stationAlive(): boolean {
    return this.lastHeartbeatChangeAt !== null
      && performance.now() - this.lastHeartbeatChangeAt <= this.heartbeatTimeoutMs;
  }

  private houseKeep(): void {
    const alive = this.stationAlive();
    if (alive !== this.aliveReported) {
      this.aliveReported = alive;
      this.log.info({ stationAlive: alive }, alive ? 'station heartbeat present' : 'station heartbeat lost');
    }
  }

  // ------------------------------------------------------------ OPC UA

  private buildAddressSpace(server: OPCUAServer): void {
    const addressSpace = server.engine.addressSpace;
    if (!addressSpace) throw new Error('OPC UA address space missing after initialize()');
    const ns = addressSpace.getOwnNamespace();
    if (ns.namespaceUri !== PLC_NAMESPACE_URI || ns.index !== 1) {
      throw new Error(`PLC namespace is ${ns.namespaceUri} at index ${ns.index}, expected ${PLC_NAMESPACE_URI} at 1`);
    }
    const folders = new Map<string, UAObject>();
    const folderOf = (path: string): UAObject => {
      const existing = folders.get(path);
      if (existing) return existing;
      const dot = path.lastIndexOf('.');
      const parent = dot < 0 ? addressSpace.rootFolder.objects : folderOf(path.slice(0, dot));
      const f = ns.addFolder(parent, { browseName: path.slice(dot + 1), nodeId: `s=${path}` });
      folders.set(path, f);
      return f;
    };
    const add = (id: string, dataType: PlcDataType, writable: boolean, get: () => boolean | number,
      set?: (v: boolean | number) => void): void => {
      const dot = id.lastIndexOf('.');
      const dt = OPC_TYPE[dataType];
      ns.addVariable({
        organizedBy: folderOf(id.slice(0, dot)),
        browseName: id.slice(dot + 1),
        nodeId: `s=${id}`,
        dataType,
        accessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
        userAccessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
        minimumSamplingInterval: 100,
        value: {
          get: () => new Variant({ dataType: dt, value: get() }),
          set: set
            ? (variant: Variant) => {
              if (variant.dataType !== dt || variant.arrayType !== VariantArrayType.Scalar) return StatusCodes.BadTypeMismatch;
              set(variant.value as boolean | number);
              return StatusCodes.Good;
            }
            : null,
        },
      });
    };
    for (const [key, tag] of Object.entries(stationTags) as [StationTagKey, typeof stationTags[StationTagKey]][]) {
      add(tag.id, tag.dataType, true, () => this.registers[key], (v) => {
        if (key === 'heartbeat' && v !== this.registers.heartbeat) this.lastHeartbeatChangeAt = performance.now();
        this.registers[key] = v;
      });
    }
    const c = this.gates.counters;
    for (const [key, tag] of Object.entries(plcTags) as [PlcTagKey, typeof plcTags[PlcTagKey]][]) {
      const get = key === 'StationAlive' ? () => this.stationAlive()
        : key === 'StationReady' ? () => this.stationReady()
        : key === 'GateWindowMs' ? () => this.gateWindowMs
          : key === 'Epoch' ? () => this.epoch
            : key === 'LastPartId' ? () => this.gates.lastPartId
              : key === 'OutcomeCount' ? () => this.gates.outcomeCount
                : () => c[key];
      add(tag.id, tag.dataType, false, get);
    }
    const logId = OUTCOME_LOG_TAG.id;
    ns.addVariable({
      organizedBy: folderOf(logId.slice(0, logId.lastIndexOf('.'))),
      browseName: logId.slice(logId.lastIndexOf('.') + 1),
      nodeId: `s=${logId}`,
      dataType: 'UInt32',
      valueRank: 1,
      accessLevel: 'CurrentRead',
      userAccessLevel: 'CurrentRead',
      minimumSamplingInterval: 100,
      value: { get: () => new Variant({ dataType: DataType.UInt32, arrayType: VariantArrayType.Array, value: this.gates.outcomeLog() }) },
    });
  }

  /** Latch results per WriteRequest, in request order, before node-opcua applies it. */
  private hookWrites(server: OPCUAServer): void {
    const engine = server.engine;
    const original = engine.write.bind(engine);
    const roles = new Map<string, StationTagKey>();
    for (const [key, tag] of Object.entries(stationTags) as [StationTagKey, typeof stationTags[StationTagKey]][]) {
      if (key !== 'heartbeat' && key !== 'ready') roles.set(tag.id, key);
    }
    engine.write = (context, nodesToWrite) => {
      if (this.scanRequest(nodesToWrite, roles)) this.lastWrite = writeSecurity(context);
      return original(context, nodesToWrite);
    };
  }

  /** true when the request carried a result strobe */
  private scanRequest(nodesToWrite: WriteValue[], roles: Map<string, StationTagKey>): boolean {
    let strobes = 0;
    let pass: boolean | null = null;
    let code: number | null = null;
    let score: number | null = null;
    let epoch: number | null = null;
    let bad = false;
    let latchedNs = 0n; // one clock read per request that carries a strobe: the instant it latched
    for (const wv of nodesToWrite) {
      const id = wv.nodeId;
      if (id.namespace !== 1 || typeof id.value !== 'string' || wv.attributeId !== AttributeIds.Value) continue;
      const role = roles.get(id.value);
      if (!role) continue;
      const v = wv.value?.value;
      const ok = v !== undefined && v !== null && v.arrayType === VariantArrayType.Scalar
        && v.dataType === OPC_TYPE[stationTags[role].dataType];
      switch (role) {
        case 'pass': if (ok) pass = v.value as boolean; else bad = true; break;
        case 'code': if (ok) code = v.value as number; else bad = true; break;
        case 'score': if (ok) score = v.value as number; else bad = true; break;
        case 'epoch': if (ok) epoch = v.value as number; else bad = true; break;
        case 'partId':
          if (!ok) break; // node-opcua answers BadTypeMismatch; no strobe
          strobes++;
          if (latchedNs === 0n) latchedNs = process.hrtime.bigint();
          switch (this.gates.onResult(v.value as number, { pass, code, score, epoch, valid: !bad && pass !== null && code !== null && score !== null })) {
            case 'in_time': this.timing.resultLatched(v.value as number, latchedNs, false); break;
            case 'late': this.timing.resultLatched(v.value as number, latchedNs, true); break;
            default: break;
          }
          pass = code = score = epoch = null; bad = false; // a second result in the same request needs its own values
          break;
        default: break;
      }
    }
    return strobes > 0;
  }
}

/** The channel's security and the session's user of a request (what the PLC would audit). */
function writeSecurity(context: ISessionContext): PlcSimWriteSecurity {
  const session = (context as { session?: { channel?: { securityMode?: MessageSecurityMode; securityPolicy?: string } | null;
    userIdentityToken?: { userName?: unknown; certificateData?: unknown } | null } }).session;
  const channel = session?.channel;
  const policy = channel?.securityPolicy ?? '';
  const token = session?.userIdentityToken;
  const user = token && typeof token.userName === 'string' ? token.userName : token && token.certificateData ? 'x509' : 'anonymous';
  return { mode: channel?.securityMode !== undefined ? (MessageSecurityMode[channel.securityMode] ?? '?') : '?',
    policy: policy.slice(policy.lastIndexOf('#') + 1) || '?', user };
}
