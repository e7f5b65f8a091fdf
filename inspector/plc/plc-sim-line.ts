/**
 * The simulated line around the PLC (plc-simulator.ts): the clock that brings
 * parts to the photo-eye, the photo-eye's UDP input and the camera trigger
 * output. Separate from the simulator because this is the line's hardware, not
 * PLC logic: it only decides *when* a part arrives and how the camera hears of
 * it; numbering, gates and outcomes stay in gate-windows.ts.
 *
 * The line's clock (`line.rate` parts/s) is independent of the station. Under
 * the Ready interlock it holds while the station is not ready: no part is
 * fired and none is owed afterwards (the conveyor stopped).
 */
import dgram from 'node:dgram';
import type { Logger } from '../core/logger.js';
import { encodeTrigger, TRIGGER_BYTES } from './trigger-telegram.js';

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

/** What the clock needs of the PLC: the photo-eye, the part count and the interlock's inputs (PlcSimulator). */
export interface LineClockHost {
  readonly readyInterlock: boolean;
  stationReady(): boolean;
  /** the last Station.Ready value the station wrote (heartbeat aside) */
  readonly readyWritten: boolean;
  stationAlive(): boolean;
  readonly epoch: number;
  readonly lastPartId: number;
  partArrived(): number;
}

export class LineClock {
  /** times the line clock held because the station was not ready (edges, not ticks) */
  holds = 0;
  private heldReported = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly host: LineClockHost, private readonly line: LineOptions, private readonly log: Logger) {}

  get running(): boolean { return this.timer !== null; }
  /** the line clock is holding now because the station is not ready */
  get held(): boolean { return this.heldReported; }

  /**
   * Start the line's own part clock: part n is due at t0 + n / rate, whatever the
   * station does (a station that falls behind loses parts, it never slows the line).
   * A timer that fires late fires the parts that are due, each with its own trigger.
   */
  start(rate: number): void {
    if (this.timer || !(rate > 0)) return;
    const host = this.host;
    const periodMs = 1000 / rate;
    let t0 = performance.now();
    let n = 0;
    const tick = (): void => {
      const now = performance.now();
      if (host.readyInterlock && !host.stationReady()) {
        // the conveyor stops: nothing is fired and nothing is owed when it runs again
        t0 = now - n * periodMs;
        this.noteHold(true);
        this.timer = setTimeout(tick, Math.min(periodMs, 20));
        return;
      }
      this.noteHold(false);
      while (t0 + n * periodMs <= now) {
        if (this.line.maxParts !== undefined && host.lastPartId >= this.line.maxParts) { this.stop(); return; }
        n++;
        host.partArrived();
      }
      this.timer = setTimeout(tick, Math.max(0, t0 + n * periodMs - performance.now()));
    };
    this.timer = setTimeout(tick, 0);
    this.log.info({ rate, epoch: host.epoch }, 'line clock started');
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.noteHold(false);
  }

  private noteHold(held: boolean): void {
    if (held === this.heldReported) return;
    this.heldReported = held;
    if (held) this.holds++;
    this.log.info({ stationReady: !held, ready: this.host.readyWritten, heartbeat: this.host.stationAlive() },
      held ? 'line held: the vision system is not ready' : 'line runs: the vision system is ready');
  }
}

/** The photo-eye input: one UDP datagram of any content on 127.0.0.1:port = one part. */
export async function openPhotoEye(port: number, onPart: () => void, log: Logger): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', () => { onPart(); });
  socket.on('error', (err) => log.error({ err }, 'photo-eye socket error'));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => { socket.off('error', reject); resolve(); });
  });
  return socket;
}

/** The camera trigger output: every part's (Epoch, PartId, item) as a trigger telegram (trigger-telegram.ts). */
export class TriggerOutput {
  /** trigger telegrams the socket could not send (counted, the part still counts at the PLC) */
  sendErrors = 0;
  private socket: dgram.Socket | null = null;

  constructor(private readonly line: LineOptions, private readonly log: Logger) {}

  /** Open the socket (once); without a trigger port there is nothing to open. */
  open(): void {
    if (this.line.triggerPort === undefined || this.socket) return;
    const ts = dgram.createSocket('udp4');
    ts.on('error', (err) => this.log.error({ err }, 'trigger socket error'));
    this.socket = ts;
  }

  send(epoch: number, partId: number, item: number): void {
    const ts = this.socket;
    if (ts && this.line.triggerPort !== undefined) {
      // a buffer per telegram: dgram sends asynchronously and does not copy, so a buffer reused by the
      // next part (the clock fires due parts in a burst after a late timer) would send that part's id twice
      ts.send(encodeTrigger({ epoch, partId, item }, Buffer.allocUnsafe(TRIGGER_BYTES)), this.line.triggerPort,
        this.line.triggerHost ?? '127.0.0.1', (err) => { if (err) this.sendErrors++; });
    }
  }

  async close(): Promise<void> {
    const ts = this.socket;
    this.socket = null;
    if (ts) await new Promise<void>((resolve) => ts.close(() => resolve()));
  }
}
