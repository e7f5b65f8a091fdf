/**
 * Runs the PLC simulator as a child process (as a real PLC is a separate
 * box): its gate timers, its line clock and its OPC UA server do not share the
 * station's event loop. Talks to it over the IPC channel of plc-sim-main.ts.
 *
 * With `lineRate` and `triggerPort` the simulated line fires parts on its own
 * clock and triggers the station's `replay-triggered` camera with each part's
 * (Epoch, PartId, item) (trigger-telegram.ts); `linePaused` holds the clock
 * until `startLine()` (start the station first: parts before that are parts
 * the station never saw).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OutcomeSummary } from './gate-windows.js';
import type { PlcCounters } from './plc-contract.js';
import type { LineTimingRange } from './line-timing.js';

export interface PlcSimProcessOptions {
  /** OPC UA port */
  port: number;
  /** UDP photo-eye port on 127.0.0.1 (one datagram = one part); default: any free port (nothing sends to it) */
  photoEyePort?: number;
  /** reject-gate window per part, ms (default 100) */
  gateWindowMs?: number;
  /** parts per second fired by the line's own clock (default 0: no clock) */
  lineRate?: number;
  /** UDP port on 127.0.0.1 of the camera's trigger input: every part is sent there as a trigger telegram */
  triggerPort?: number;
  /** distinct physical parts on the line (the replay folder's images): item = (PartId - 1) % items */
  items?: number;
  /** stop the line clock after this many parts */
  maxParts?: number;
  /** the items that are defective (simulation truth: escapes and good parts rejected, see `truth()`) */
  defectiveItems?: readonly number[];
  /** do not start the line clock until startLine() */
  linePaused?: boolean;
  /** the line holds (and arriving parts are rejected untriggered) while the station is not Ready (plc-simulator.ts) */
  readyInterlock?: boolean;
  /** counters logged every this many ms (default 5000; 0 = never) */
  logIntervalMs?: number;
}

/** What the simulated line knows and a real PLC does not (GateWindows.truth), with the counters of the same instant. */
export interface LineTruth {
  truth: { defectiveParts: number; escapes: number; goodParts: number; goodRejected: number };
  counters: PlcCounters;
  triggerSendErrors: number;
  /** the line clock is running; parts whose gate window is still open (simulators that report them) */
  lineRunning?: boolean;
  pendingParts?: number;
}

export class PlcSimProcess {
  /** the simulator's process id (the bench gives the line the hot path's priority: a real PLC is another machine) */
  get pid(): number | undefined { return this.child.pid; }

  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
    /** bound photo-eye UDP port */
    readonly photoEyePort: number | null,
    /** the part-numbering epoch of this PLC run */
    readonly epoch: number,
    private readonly tmp: string | null,
  ) {}

  static async start(opts: PlcSimProcessOptions): Promise<PlcSimProcess> {
    const main = fileURLToPath(new URL('./plc-sim-main.ts', import.meta.url));
    const args = ['--port', String(opts.port), '--photo-eye-port', String(opts.photoEyePort ?? 0),
      '--gate-window-ms', String(opts.gateWindowMs ?? 100)];
    if (opts.lineRate !== undefined) args.push('--line-rate', String(opts.lineRate));
    if (opts.triggerPort !== undefined) args.push('--trigger-port', String(opts.triggerPort));
    if (opts.items !== undefined) args.push('--items', String(opts.items));
    if (opts.maxParts !== undefined) args.push('--max-parts', String(opts.maxParts));
    if (opts.linePaused) args.push('--line-paused');
    if (opts.readyInterlock) args.push('--ready-interlock');
    if (opts.logIntervalMs !== undefined) args.push('--log-interval-ms', String(opts.logIntervalMs));
    let tmp: string | null = null;
    if (opts.defectiveItems) {
      tmp = mkdtempSync(join(tmpdir(), 'plc-sim-truth-'));
      const file = join(tmp, 'defective-items.json');
      writeFileSync(file, JSON.stringify([...opts.defectiveItems]));
      args.push('--defective-items-file', file);
    }
    const child = fork(main, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const ready = await new Promise<{ endpoint: string; photoEyePort: number | null; epoch: number }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('PLC simulator did not start within 30 s')), 30_000);
        child.on('message', (m: { type?: string; endpoint?: string; photoEyePort?: number | null; epoch?: number; message?: string }) => {
          if (m?.type === 'ready') { clearTimeout(t); resolve({ endpoint: m.endpoint!, photoEyePort: m.photoEyePort ?? null, epoch: m.epoch ?? 0 }); }
          if (m?.type === 'error') { clearTimeout(t); reject(new Error(`PLC simulator failed to start: ${m.message}`)); }
        });
        child.once('exit', (code) => { clearTimeout(t); reject(new Error(`PLC simulator exited with ${code}`)); });
      });
      return new PlcSimProcess(child, ready.endpoint, ready.photoEyePort, ready.epoch, tmp);
    } catch (err) {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  private ask<T>(request: Record<string, unknown>, replyType: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => { this.child.off('message', on); reject(new Error(`PLC simulator did not answer ${replyType}`)); }, 10_000);
      const on = (m: Record<string, unknown>) => {
        if (m?.type !== replyType) return;
        clearTimeout(t);
        this.child.off('message', on);
        resolve(m as T);
      };
      this.child.on('message', on);
      this.child.send(request);
    });
  }

  async counters(): Promise<PlcCounters> {
    return (await this.ask<{ counters: PlcCounters }>({ type: 'counters' }, 'counters')).counters;
  }

  /** Outcomes of parts [from, to] (the PLC's PartIds), summarised by the simulator. */
  async outcomes(from: number, to: number): Promise<OutcomeSummary> {
    return (await this.ask<{ summary: OutcomeSummary }>({ type: 'outcomes', from, to }, 'outcomes')).summary;
  }

  /** Simulation truth (escapes, good parts rejected) with the counters of the same instant. */
  async truth(): Promise<LineTruth> {
    const { type: _type, ...reply } = await this.ask<LineTruth & { type: string }>({ type: 'truth' }, 'truth');
    return reply;
  }

  /**
   * Photo-eye and latch times of parts [from, to] (line-timing.ts), on CLOCK_MONOTONIC: subtract the
   * station's `process.hrtime.bigint()` stamps after adding `originNs`. After the run: it allocates.
   */
  async lineTiming(from: number, to: number): Promise<LineTimingRange & { unmatchedResults: number }> {
    const r = await this.ask<{ timing: LineTimingRange; unmatchedResults: number }>({ type: 'lineTiming', from, to }, 'lineTiming');
    return { ...r.timing, unmatchedResults: r.unmatchedResults };
  }

  /** Start the line clock (at `rate`, default the configured line rate). */
  async startLine(rate?: number): Promise<void> {
    await this.ask({ type: 'startLine', ...(rate !== undefined ? { rate } : {}) }, 'lineStarted');
  }

  /** Stop the line clock; resolves with the PartId of the last part it fired. */
  async stopLine(): Promise<number> {
    return (await this.ask<{ lastPartId: number }>({ type: 'stopLine' }, 'lineStopped')).lastPartId;
  }

  async stopServer(): Promise<void> {
    await this.ask({ type: 'stopServer' }, 'serverStopped');
  }

  async startServer(): Promise<void> {
    await this.ask({ type: 'startServer' }, 'serverStarted');
  }

  async stop(): Promise<void> {
    try {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return;
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      if (this.child.connected) this.child.send({ type: 'stop' }); else this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    } finally {
      if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    }
  }
}
