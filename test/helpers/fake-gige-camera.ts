/**
 * Aravis' fake GigE Vision camera on loopback (real GVCP/GVSP protocol).
 * It binds the fixed GVCP port of 127.0.0.1, so only one runs at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';

export const GVCP_PORT = 3956;

export async function portFree(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => { s.close(); resolve(true); });
  });
}

export function startFakeCamera(): ChildProcess {
  const cam = spawn('arv-fake-gv-camera-0.8', ['-i', '127.0.0.1'], { stdio: 'ignore' });
  cam.on('error', () => undefined);
  return cam;
}

export async function killProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGKILL');
  await gone;
}

/** Wait until no fake camera from an earlier test holds the port. */
export async function waitForGvcpPortFree(sleep: (ms: number) => Promise<unknown>): Promise<boolean> {
  for (let i = 0; i < 50 && !(await portFree(GVCP_PORT)); i++) await sleep(200);
  return portFree(GVCP_PORT);
}
