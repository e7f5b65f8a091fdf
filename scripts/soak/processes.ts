/**
 * The soak's processes: the PLC simulator (its own process, killed with -9 for
 * the plc-restart fault) and the station under a supervisor that restarts it on
 * any exit it did not ask for (Restart=always, RestartSec=1, as the systemd unit
 * in deploy/systemd does), each talking over an IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TSX = { execArgv: ['--import', 'tsx'] };

function waitMessage<T>(child: ChildProcess, type: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error(`${what}: no '${type}' within ${timeoutMs} ms`)); }, timeoutMs);
    const onMsg = (m: { type?: string }): void => { if (m?.type === type) { cleanup(); resolve(m as T); } };
    const onExit = (code: number | null, sig: string | null): void => { cleanup(); reject(new Error(`${what} exited (${code ?? sig}) before '${type}'`)); };
    const cleanup = (): void => { clearTimeout(t); child.off('message', onMsg); child.off('exit', onExit); };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

/** RSS of a process in bytes (Linux /proc), null when it is gone. */
export function rssOf(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface SimTruth {
  truth: { defectiveParts: number; escapes: number; goodParts: number; goodRejected: number };
  counters: Record<string, number | boolean> & { Epoch: number; LastPartId: number; Accepted: number; Parts: number };
  lineRunning: boolean;
  pendingParts: number;
}

export class SimProcess {
  private constructor(readonly child: ChildProcess, readonly epoch: number) {}

  static async start(args: string[], logFile: string): Promise<SimProcess> {
    const main = fileURLToPath(new URL('../../inspector/plc/plc-sim-main.ts', import.meta.url));
    const log = openSync(logFile, 'a');
    const child = fork(main, [...args, '--log-interval-ms', '0'], { ...TSX, stdio: ['ignore', log, log, 'ipc'] });
    const ready = await waitMessage<{ epoch: number }>(child, 'ready', 60_000, 'PLC simulator');
    return new SimProcess(child, ready.epoch);
  }

  get pid(): number | undefined { return this.child.pid; }

  truth(): Promise<SimTruth> {
    const p = waitMessage<SimTruth>(this.child, 'truth', 10_000, 'PLC simulator');
    this.child.send({ type: 'truth' });
    return p;
  }

  startLine(): void { this.child.send({ type: 'startLine' }); }

  kill9(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    return exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

/** The station as `inspector run`, with fault injection, restarted whenever it exits unasked. */
export class StationSupervisor {
  child: ChildProcess | null = null;
  /** starts after the first (systemd's restart counter) */
  restarts = 0;
  readyAt = 0;
  private stopping = false;
  private readyWaiters: Array<() => void> = [];

  constructor(private readonly configFile: string, private readonly logFile: string, private readonly restartSecMs = 1000) {}

  get pid(): number | undefined { return this.child?.pid; }

  /** Start; resolves when the station says it runs. */
  start(): Promise<void> {
    const main = fileURLToPath(new URL('../../inspector/cli/main.ts', import.meta.url));
    const log = openSync(this.logFile, 'a');
    const child = fork(main, ['run', '--config', this.configFile], {
      ...TSX, stdio: ['ignore', log, log, 'ipc'],
      env: { MALLOC_ARENA_MAX: '2', ...process.env, INSPECTOR_FAULT_INJECTION: '1', UV_THREADPOOL_SIZE: '16' }, // as the systemd unit
    });
    this.child = child;
    child.once('exit', () => {
      if (this.child !== child || this.stopping) return;
      this.child = null;
      this.restarts++;
      setTimeout(() => { void this.start().catch(() => undefined); }, this.restartSecMs); // Restart=always, RestartSec
    });
    return waitMessage(child, 'ready', 180_000, 'station').then(() => {
      this.readyAt = Date.now();
      for (const w of this.readyWaiters.splice(0)) w();
    });
  }

  /** Resolves at the next 'ready' (after a restart). */
  nextReady(): Promise<void> { return new Promise((resolve) => this.readyWaiters.push(resolve)); }

  kill9(): void { this.child?.kill('SIGKILL'); }

  /** Send a fault; resolves with its outcome. */
  async fault(fault: string): Promise<{ ok: boolean; detail: string }> {
    const child = this.child;
    if (!child) return { ok: false, detail: 'station not running' };
    const p = waitMessage<{ ok: boolean; detail: string }>(child, 'fault-done', 120_000, 'station');
    child.send({ type: 'fault', fault });
    return p;
  }

  async stop(): Promise<number | null> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.send({ type: 'stop' });
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }
}
