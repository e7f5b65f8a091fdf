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
 * This file ties the parts together and holds the station's inputs (registers,
 * heartbeat watchdog, Ready); the pieces live beside it:
 *  - plc-sim-line.ts: the line's clock, the photo-eye input, the camera trigger output;
 *  - plc-sim-address-space.ts: the OPC UA variables (from plc-contract.ts) and the
 *    per-WriteRequest result latch (`server.engine.write` hook);
 *  - plc-sim-security.ts: the endpoints, users and PKI the server offers, and
 *    `lastWrite` (over which security and as which user the last result came).
 * `stopServer()` / `startServer()` stop and rebuild only the server (a
 * node-opcua server cannot be restarted after shutdown) on the same port.
 *
 * Ready interlock (`readyInterlock: true`): as a real line interlocks on a vision
 * system's Ready/Online bit, the line runs only while the station has written
 * Station.Ready = true AND its heartbeat is alive (Plc.StationReady). While not
 * ready the line clock holds (no part is fired, none is owed afterwards: the
 * conveyor stopped), and a part the photo-eye sees anyway is rejected at once,
 * untriggered, as RejectedNotReady (never a timeout or a late result). Off by
 * default: tests that drive the PLC without a station keep the old behaviour.
 */
import type dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPCUAServer, nodesets } from 'node-opcua';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { PLC_NAMESPACE_URI, type PlcCounters, type StationTagKey } from './plc-contract.js';
import { GateWindows, type OutcomeSummary, type PartOutcome } from './gate-windows.js';
import { LineTiming } from './line-timing.js';
import { quietNodeOpcua } from './plc-connection.js';
import { LineClock, openPhotoEye, TriggerOutput, type LineOptions } from './plc-sim-line.js';
import { buildAddressSpace, hookWrites } from './plc-sim-address-space.js';
import {
  resolveSimSecurity, serverSecurityOptions, writeSecurity, type PlcSimSecurity, type PlcSimSecurityOptions,
  type PlcSimWriteSecurity,
} from './plc-sim-security.js';

export type { OutcomeSummary, PartOutcome } from './gate-windows.js';
export type { LineOptions } from './plc-sim-line.js';
export type {
  PlcSimSecurityMode, PlcSimSecurityOptions, PlcSimSecurityPolicy, PlcSimWriteSecurity,
} from './plc-sim-security.js';

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
  private lastHeartbeatChangeAt: number | null = null;
  private aliveReported = false;
  private readonly line: LineOptions;
  private readonly clock: LineClock;
  private readonly trigger: TriggerOutput;
  /**
   * Per part, on CLOCK_MONOTONIC (shared with the station's process): photo-eye fired, result latched
   * (line-timing.ts). The benchmark's headline photo-eye → latched-at-the-PLC comes from here.
   */
  readonly timing = new LineTiming();
  /** security and user of the last request that carried a result strobe (null before the first) */
  lastWrite: PlcSimWriteSecurity | null = null;
  private readonly security: PlcSimSecurity;

  constructor(opts: PlcSimulatorOptions) {
    this.port = opts.port;
    this.gateWindowMs = opts.gateWindowMs ?? 100;
    this.photoEyeWanted = opts.photoEyePort;
    this.log = (opts.logger ?? rootLogger).child({ mod: 'plc-sim' });
    this.heartbeatTimeoutMs = (opts.heartbeatIntervalMs ?? 500) * (opts.heartbeatTimeoutFactor ?? 3);
    this.line = opts.line ?? {};
    this.readyInterlock = opts.readyInterlock ?? false;
    this.clock = new LineClock(this, this.line, this.log);
    this.trigger = new TriggerOutput(this.line, this.log);
    this.gates = new GateWindows(this.gateWindowMs, opts.maxOutcomes ?? 100_000, this.log, opts.epoch ?? randomInt(1, 0xffffffff));
    if (this.line.defectiveItems) {
      const bad = new Set(this.line.defectiveItems);
      this.gates.isDefective = (item) => bad.has(item);
    }
    this.ownsCertFolder = !opts.certificateFolder;
    this.certFolder = opts.certificateFolder ?? mkdtempSync(join(tmpdir(), 'plc-sim-pki-'));
    this.security = resolveSimSecurity(opts.security ?? {});
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
      this.socket = await openPhotoEye(this.photoEyeWanted, () => { this.partArrived(); }, this.log);
    }
    this.trigger.open();
    this.housekeeping ??= setInterval(() => this.houseKeep(), Math.max(10, Math.min(100, this.gateWindowMs / 2)));
    await this.startServer();
    if ((this.line.rate ?? 0) > 0 && this.line.autoStart !== false) this.startLine();
  }

  /** Station.Ready written true and the heartbeat alive: the vision system can judge parts. */
  stationReady(): boolean { return this.registers.ready === true && this.stationAlive(); }

  /** the last Station.Ready value the station wrote (heartbeat aside) */
  get readyWritten(): boolean { return this.registers.ready === true; }

  /** the line clock is holding now because the station is not ready */
  get lineHeld(): boolean { return this.clock.held; }
  /** times the line clock held because the station was not ready (edges, not ticks) */
  get lineHolds(): number { return this.clock.holds; }
  /** trigger telegrams the socket could not send (counted, the part still counts at the PLC) */
  get triggerSendErrors(): number { return this.trigger.sendErrors; }

  /** Part-numbering epoch of this PLC run. */
  get epoch(): number { return this.gates.epoch; }
  get lastPartId(): number { return this.gates.lastPartId; }
  get lineRunning(): boolean { return this.clock.running; }

  /** Start the line's own part clock (plc-sim-line.ts: parts come at `rate`, whatever the station does). */
  startLine(rate = this.line.rate ?? 0): void { this.clock.start(rate); }

  stopLine(): void { this.clock.stop(); }

  async stop(): Promise<void> {
    this.stopLine();
    await this.stopServer();
    await this.trigger.close();
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
      nodeset_filename: [nodesets.standard], // standard nodeset only: ~0.6 s to load
      serverInfo: { applicationUri: PLC_NAMESPACE_URI, productUri: PLC_NAMESPACE_URI,
        applicationName: { text: 'inline-inspector PLC simulator' } },
      ...serverSecurityOptions(this.security, this.serverPkiFolder, this.certFolder),
    });
    try {
      await server.initialize();
      buildAddressSpace(server, {
        registers: this.registers,
        stationWrote: (key, v) => this.stationWrote(key, v),
        gates: this.gates,
        gateWindowMs: this.gateWindowMs,
        stationAlive: () => this.stationAlive(),
        stationReady: () => this.stationReady(),
      });
      hookWrites(server, this.gates, this.timing, (context) => { this.lastWrite = writeSecurity(context); });
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
    this.trigger.send(this.epoch, id, item);
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

  /** A station variable was written over OPC UA (type already checked): keep it; a new heartbeat value proves the station alive. */
  private stationWrote(key: StationTagKey, v: boolean | number): void {
    if (key === 'heartbeat' && v !== this.registers.heartbeat) this.lastHeartbeatChangeAt = performance.now();
    this.registers[key] = v;
  }

  private houseKeep(): void {
    const alive = this.stationAlive();
    if (alive !== this.aliveReported) {
      this.aliveReported = alive;
      this.log.info({ stationAlive: alive }, alive ? 'station heartbeat present' : 'station heartbeat lost');
    }
  }
}
