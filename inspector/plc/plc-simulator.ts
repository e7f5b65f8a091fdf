/**
 * PlcSimulator: the line's PLC, standing in for a real one.
 *
 * PLC logic (runs whether or not the OPC UA server is up):
 *  - parts are counted by a photo-eye: one UDP datagram on 127.0.0.1:photoEyePort
 *    (or one `partArrived()` call) = one part, ids 1, 2, 3… in arrival order;
 *  - each part holds a reject-gate window of `gateWindowMs`; a valid accept
 *    (Pass = true AND Code = 0) for that PartId inside the window accepts it, any
 *    other result rejects it, no result rejects it when the window closes
 *    (RejectedTimeout). First result wins; later ones are DuplicateResults;
 *    results after the window are LateResults (the part stays rejected);
 *  - a result for a part not seen yet is held and applied if that part arrives
 *    within gateWindowMs of the result, else counted in OrphanResults.
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
import { quietNodeOpcua } from './plc-link.js';

quietNodeOpcua();

export interface PartOutcome {
  outcome: 'accepted' | 'rejected' | 'timeout';
  pass: boolean | null;
  code: number | null;
  score: number | null;
  /** result time minus photo-eye time, ms (negative: result came before the trigger) */
  resultAfterMs: number | null;
  /** a result came after the window closed (outcome stays 'timeout') */
  late: boolean;
}

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

/** Outcomes of a range of parts (what the bench and plc-sim-process ask for). */
export interface OutcomeSummary {
  /** parts in the range the photo-eye has seen (decided or window still open) */
  parts: number;
  /** outcome 'accepted' */
  accepted: number;
  /** outcome 'rejected' (a result said reject, or was invalid) */
  rejected: number;
  /** outcome 'timeout' (no result inside the window) */
  timeout: number;
  /** a result came after the window */
  late: number;
  /** parts with no result at all: neither in time nor late */
  noResult: number;
  /** parts whose PLC outcome disagrees with the result the station sent (should be 0) */
  mismatched: number;
}

interface OutcomeRecord extends PartOutcome { arrivedAt: number }
interface Latched { pass: boolean | null; code: number | null; score: number | null; valid: boolean }
interface Held extends Latched { receivedAt: number }

const OPC_TYPE: Record<PlcDataType, DataType> = {
  Boolean: DataType.Boolean, UInt16: DataType.UInt16, UInt32: DataType.UInt32, Float: DataType.Float,
};
const MAX_HELD = 1024;

export class PlcSimulator {
  readonly gateWindowMs: number;
  /** duration of the last OPC UA server start (construct + initialize + listen), ms */
  lastServerStartMs: number | null = null;

  private readonly port: number;
  private readonly log: Logger;
  private readonly certFolder: string;
  private readonly ownsCertFolder: boolean;
  private readonly heartbeatTimeoutMs: number;
  private readonly maxOutcomes: number;
  private readonly photoEyeWanted: number | undefined;

  private server: OPCUAServer | null = null;
  private starting: Promise<void> | null = null;
  private socket: dgram.Socket | null = null;
  private housekeeping: NodeJS.Timeout | null = null;
  private gateTimer: NodeJS.Timeout | null = null;

  private readonly c: Omit<PlcCounters, 'StationAlive' | 'GateWindowMs'> = {
    Parts: 0, Accepted: 0, Rejected: 0, RejectedTimeout: 0, LateResults: 0, SequenceMismatch: 0,
    DuplicateResults: 0, ResultsReceived: 0, OrphanResults: 0,
  };
  private lastArrivedId = 0;
  private lastStrobeId = 0;
  /** undecided parts, id → photo-eye time; insertion order = arrival order */
  private readonly open = new Map<number, number>();
  private readonly held = new Map<number, Held>();
  private readonly outcomeMap = new Map<number, OutcomeRecord>();
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
    this.maxOutcomes = opts.maxOutcomes ?? 100_000;
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
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.housekeeping = this.gateTimer = null;
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
  partArrived(): number {
    const now = performance.now();
    const id = ++this.lastArrivedId;
    this.c.Parts++;
    const held = this.held.get(id);
    if (held) {
      this.held.delete(id);
      if (now - held.receivedAt <= this.gateWindowMs) {
        this.decide(id, now, held, held.receivedAt - now);
        return id;
      }
      this.c.OrphanResults++;
    }
    this.open.set(id, now);
    this.armGate(now);
    return id;
  }

  counters(): PlcCounters {
    return { ...this.c, StationAlive: this.stationAlive(), GateWindowMs: this.gateWindowMs };
  }

  /** Snapshot of the decided parts (last maxOutcomes), PartId → outcome. */
  outcomes(): Map<number, PartOutcome> {
    const m = new Map<number, PartOutcome>();
    for (const [id, r] of this.outcomeMap) {
      m.set(id, { outcome: r.outcome, pass: r.pass, code: r.code, score: r.score,
        resultAfterMs: r.resultAfterMs, late: r.late });
    }
    return m;
  }

  /** Summary over PartIds [from, to] (inclusive). Parts evicted from the outcome history are not counted. */
  outcomeSummary(from: number, to: number): OutcomeSummary {
    const sum: OutcomeSummary = { parts: 0, accepted: 0, rejected: 0, timeout: 0, late: 0, noResult: 0, mismatched: 0 };
    const last = Math.min(to, this.lastArrivedId);
    for (let id = Math.max(1, from); id <= last; id++) {
      const r = this.outcomeMap.get(id);
      if (!r) { if (this.open.has(id)) sum.parts++; continue; }
      sum.parts++;
      if (r.late) sum.late++;
      if (r.outcome === 'timeout') {
        sum.timeout++;
        if (!r.late) sum.noResult++;
        continue;
      }
      if (r.outcome === 'accepted') sum.accepted++; else sum.rejected++;
      const saidAccept = r.pass === true && r.code === 0;
      if ((r.outcome === 'accepted') !== saidAccept) sum.mismatched++;
    }
    return sum;
  }

  /** Parts whose window is still open. */
  get pendingParts(): number { return this.open.size; }

  stationAlive(): boolean {
    return this.lastHeartbeatChangeAt !== null
      && performance.now() - this.lastHeartbeatChangeAt <= this.heartbeatTimeoutMs;
  }

  // ------------------------------------------------------------ PLC logic

  /** One strobe (PartId write) with the values latched from the same request. */
  private onResult(partId: number, r: Latched): void {
    const now = performance.now();
    this.c.ResultsReceived++;
    if (partId !== this.lastStrobeId + 1) this.c.SequenceMismatch++;
    this.lastStrobeId = partId;
    if (!r.valid) this.log.warn({ partId, ...r }, 'invalid result (Pass/Code/Score missing or mistyped before the strobe): reject');
    if (partId === 0) { this.c.OrphanResults++; return; }
    if (partId > this.lastArrivedId) { // result before trigger: hold it
      if (this.held.has(partId)) this.c.DuplicateResults++;
      else if (this.held.size >= MAX_HELD) this.c.OrphanResults++;
      else this.held.set(partId, { ...r, receivedAt: now });
      return;
    }
    const arrivedAt = this.open.get(partId);
    if (arrivedAt !== undefined) {
      this.open.delete(partId);
      if (now - arrivedAt <= this.gateWindowMs) { this.decide(partId, arrivedAt, r, now - arrivedAt); return; }
      this.timeout(partId, arrivedAt); // window closed, gate timer not run yet
    }
    const rec = this.outcomeMap.get(partId);
    if (rec && (rec.outcome !== 'timeout' || rec.late)) { this.c.DuplicateResults++; return; }
    this.c.LateResults++;
    if (rec) {
      rec.late = true;
      rec.pass = r.pass; rec.code = r.code; rec.score = r.score;
      rec.resultAfterMs = now - rec.arrivedAt;
    }
  }

  private decide(id: number, arrivedAt: number, r: Latched, afterMs: number): void {
    const accept = r.valid && r.pass === true && r.code === 0;
    if (accept) this.c.Accepted++; else this.c.Rejected++;
    this.record(id, { outcome: accept ? 'accepted' : 'rejected', pass: r.pass, code: r.code, score: r.score,
      resultAfterMs: afterMs, late: false, arrivedAt });
  }

  private timeout(id: number, arrivedAt: number): void {
    this.c.RejectedTimeout++;
    this.c.Rejected++;
    this.record(id, { outcome: 'timeout', pass: null, code: null, score: null, resultAfterMs: null, late: false, arrivedAt });
  }

  private record(id: number, rec: OutcomeRecord): void {
    this.outcomeMap.set(id, rec);
    if (this.outcomeMap.size > this.maxOutcomes) {
      const oldest = this.outcomeMap.keys().next();
      if (!oldest.done) this.outcomeMap.delete(oldest.value);
    }
  }

  /** One timer, due when the oldest open window closes (windows close in arrival order). */
  private armGate(now: number): void {
    if (this.gateTimer) return;
    const first = this.open.values().next();
    if (first.done) return;
    const delay = Math.max(1, Math.ceil(first.value + this.gateWindowMs - now) + 1);
    this.gateTimer = setTimeout(() => {
      this.gateTimer = null;
      const t = performance.now();
      for (const [id, at] of this.open) {
        if (t - at <= this.gateWindowMs) break;
        this.open.delete(id);
        this.timeout(id, at);
      }
      this.armGate(t);
    }, delay);
  }

  private houseKeep(): void {
    const now = performance.now();
    for (const [id, h] of this.held) {
      if (now - h.receivedAt > this.gateWindowMs) { this.held.delete(id); this.c.OrphanResults++; }
    }
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
    const c = this.c;
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
          this.onResult(v.value as number, { pass, code, score, valid: !bad && pass !== null && code !== null && score !== null });
          pass = code = score = null; bad = false; // a second result in the same request needs its own values
          break;
        default: break;
      }
    }
  }
}
