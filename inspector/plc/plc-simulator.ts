/**
 * PlcSimulator: the line's PLC, standing in for a real one.
 *
 * PLC logic (gate-windows.ts; runs whether or not the OPC UA server is up):
 * parts are counted by a photo-eye, one UDP datagram on 127.0.0.1:photoEyePort
 * (or one `partArrived()` call) = one part; each part holds a reject-gate window
 * of `gateWindowMs` and is a reject unless a valid accept arrives inside it.
 *
 * OPC UA: the address space is built from plc-contract.ts. Results are latched
 * per WriteRequest by a hook on `server.engine.write`, which sees the whole
 * request before node-opcua applies it variable by variable: node-opcua keeps
 * the order inside one request but interleaves pipelined requests (measured:
 * 20 concurrent 3-value writes arrive as A0..A19, B0..B19, C0..C19), so a
 * per-variable `set` hook cannot know which Pass belongs to which PartId.
 * `stopServer()` / `startServer()` stop and rebuild only the server (a
 * node-opcua server cannot be restarted after shutdown) on the same port.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy,
  StatusCodes, Variant, VariantArrayType, nodesets, type UAObject, type WriteValue,
} from 'node-opcua';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import {
  PLC_NAMESPACE_URI, plcTags, stationTags, type PlcCounters, type PlcDataType, type PlcTagKey,
  type StationTagKey,
} from './plc-contract.js';
import { GateWindows, type OutcomeSummary, type PartOutcome } from './gate-windows.js';
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
    pass: false, code: 0, score: 0, partId: 0, heartbeat: 0,
  };
  private lastHeartbeatChangeAt: number | null = null;
  private aliveReported = false;

  constructor(opts: PlcSimulatorOptions) {
    this.port = opts.port;
    this.gateWindowMs = opts.gateWindowMs ?? 100;
    this.photoEyeWanted = opts.photoEyePort;
    this.log = (opts.logger ?? rootLogger).child({ mod: 'plc-sim' });
    this.heartbeatTimeoutMs = (opts.heartbeatIntervalMs ?? 500) * (opts.heartbeatTimeoutFactor ?? 3);
    this.gates = new GateWindows(this.gateWindowMs, opts.maxOutcomes ?? 100_000, this.log);
    this.ownsCertFolder = !opts.certificateFolder;
    this.certFolder = opts.certificateFolder ?? mkdtempSync(join(tmpdir(), 'plc-sim-pki-'));
  }

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
    this.housekeeping ??= setInterval(() => this.houseKeep(), Math.max(10, Math.min(100, this.gateWindowMs / 2)));
    await this.startServer();
  }

  async stop(): Promise<void> {
    await this.stopServer();
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
    const server = new OPCUAServer({
      port: this.port,
      host: '127.0.0.1',
      hostname: '127.0.0.1',
      serverCertificateManager: new OPCUACertificateManager({
        rootFolder: join(this.certFolder, 'server'), automaticallyAcceptUnknownCertificate: true }),
      userCertificateManager: new OPCUACertificateManager({
        rootFolder: join(this.certFolder, 'user'), automaticallyAcceptUnknownCertificate: true }),
      nodeset_filename: [nodesets.standard], // standard nodeset only: ~0.6 s to load
      serverInfo: { applicationUri: PLC_NAMESPACE_URI, productUri: PLC_NAMESPACE_URI,
        applicationName: { text: 'inline-inspector PLC simulator' } },
      securityModes: [MessageSecurityMode.None], // loopback only
      securityPolicies: [SecurityPolicy.None],
      allowAnonymous: true,
      disableDiscovery: true,
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

  /** The photo-eye saw a part. Returns its PartId. */
  partArrived(): number { return this.gates.partArrived(); }

  counters(): PlcCounters {
    return { ...this.gates.counters, StationAlive: this.stationAlive(), GateWindowMs: this.gateWindowMs };
  }

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
    this.gates.expireHeld();
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
        : key === 'GateWindowMs' ? () => this.gateWindowMs
          : () => c[key];
      add(tag.id, tag.dataType, false, get);
    }
  }

  /** Latch results per WriteRequest, in request order, before node-opcua applies it. */
  private hookWrites(server: OPCUAServer): void {
    const engine = server.engine;
    const original = engine.write.bind(engine);
    const roles = new Map<string, StationTagKey>();
    for (const [key, tag] of Object.entries(stationTags) as [StationTagKey, typeof stationTags[StationTagKey]][]) {
      if (key !== 'heartbeat') roles.set(tag.id, key);
    }
    engine.write = (context, nodesToWrite) => {
      this.scanRequest(nodesToWrite, roles);
      return original(context, nodesToWrite);
    };
  }

  private scanRequest(nodesToWrite: WriteValue[], roles: Map<string, StationTagKey>): void {
    let pass: boolean | null = null;
    let code: number | null = null;
    let score: number | null = null;
    let bad = false;
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
        case 'partId':
          if (!ok) break; // node-opcua answers BadTypeMismatch; no strobe
          this.gates.onResult(v.value as number, { pass, code, score, valid: !bad && pass !== null && code !== null && score !== null });
          pass = code = score = null; bad = false; // a second result in the same request needs its own values
          break;
        default: break;
      }
    }
  }
}
