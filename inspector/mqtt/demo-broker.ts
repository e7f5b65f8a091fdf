/**
 * The broker of `inspector demo --mqtt`: Debian's mosquitto (installed by scripts/setup.sh), started as the demo's own
 * child process on a free loopback port with a config file (mosquitto 2 refuses anonymous clients and remote
 * listeners without one), stopped by its pid. `--mqtt URL` uses an existing broker instead.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { freePort } from '../core/free-port.js';

export interface DemoBroker { url: string; stop(): Promise<void> }

const MOSQUITTO = '/usr/sbin/mosquitto';

const listening = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

/** undefined: no MQTT; true: a mosquitto of our own; a string: that broker's URL. */
export async function demoBroker(option: string | boolean | undefined, log: Logger): Promise<DemoBroker | null> {
  if (option === undefined || option === false) return null;
  if (typeof option === 'string') return { url: option, stop: async () => undefined };
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'inspector-demo-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n`);
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => proc.once('error', (err) => reject(new Error(`${MOSQUITTO}: ${err.message} (scripts/setup.sh installs it)`))));
  const until = Date.now() + 10_000;
  for (;;) {
    if (await Promise.race([listening(port), failed])) break;
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`mosquitto did not start on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = `mqtt://127.0.0.1:${port}`;
  log.info({ url, pid: proc.pid }, 'demo MQTT broker (mosquitto) started');
  return {
    url,
    stop: async () => {
      if (proc.exitCode === null) { proc.kill('SIGTERM'); await exited; }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
