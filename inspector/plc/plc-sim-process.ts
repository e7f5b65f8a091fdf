/**
 * Runs the PLC simulator as a child process (as a real PLC is a separate
 * box): its gate timers and OPC UA server do not share the station's event
 * loop. Talks to it over the IPC channel of plc-sim-main.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { OutcomeSummary } from './gate-windows.js';


export class PlcSimProcess {
  private constructor(private readonly child: ChildProcess, readonly endpoint: string) {}

  static async start(opts: { port: number; photoEyePort: number; gateWindowMs: number }): Promise<PlcSimProcess> {
    const main = fileURLToPath(new URL('./plc-sim-main.ts', import.meta.url));
    const child = fork(main, ['--port', String(opts.port), '--photo-eye-port', String(opts.photoEyePort),
      '--gate-window-ms', String(opts.gateWindowMs)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const endpoint = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('PLC simulator did not start within 30 s')), 30_000);
      child.on('message', (m: { type?: string; endpoint?: string }) => {
        if (m?.type === 'ready') { clearTimeout(t); resolve(m.endpoint!); }
      });
      child.once('exit', (code) => { clearTimeout(t); reject(new Error(`PLC simulator exited with ${code}`)); });
    });
    return new PlcSimProcess(child, endpoint);
  }

  private ask<T>(request: Record<string, unknown>, replyType: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`PLC simulator did not answer ${replyType}`)), 10_000);
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

  async counters(): Promise<Record<string, number | boolean>> {
    return (await this.ask<{ counters: Record<string, number | boolean> }>({ type: 'counters' }, 'counters')).counters;
  }

  /** Outcomes of parts [from, to] (photo-eye ids), summarised by the simulator. */
  async outcomes(from: number, to: number): Promise<OutcomeSummary> {
    return (await this.ask<{ summary: OutcomeSummary }>({ type: 'outcomes', from, to }, 'outcomes')).summary;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ type: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
