/**
 * The station's systemd notifications (inspector/station/systemd-notify.ts) against
 * a real AF_UNIX SOCK_DGRAM socket standing in for systemd's NOTIFY_SOCKET: Node
 * cannot bind one, so a small Python listener (Debian's /usr/bin/python3) binds it
 * and prints every datagram it receives as one JSON line. Datagrams on a unix
 * socket are neither lost nor reordered, and the notifier sends everything through
 * one helper in order, so "no ping between two markers" is an exact check. No
 * timing is asserted: every wait polls with a generous deadline.
 */
import { describe, it, expect, afterEach, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SystemdNotifier, partLoopLiveness, watchdogPingMs, type ProgressSample } from '../inspector/station/systemd-notify.js';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { sleep, until } from './helpers/wait.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const LISTENER = String.raw`
import json, socket, sys
addr = sys.argv[1]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(addr)
print(json.dumps("LISTENING"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode("utf-8", "replace")), flush=True)
`;

/** systemd's end of the protocol: every datagram received, in order. */
class NotifyListener {
  readonly messages: string[] = [];
  private constructor(private readonly child: ChildProcess, readonly address: string) {}

  static async start(address: string): Promise<NotifyListener> {
    const child = spawn(PYTHON, ['-u', '-c', LISTENER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    const l = new NotifyListener(child, address);
    let listening = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as string;
      if (m === 'LISTENING' && !listening) listening = true;
      else l.messages.push(m);
    });
    await until(() => listening || child.exitCode !== null, 20_000, `the listener to bind ${address}`);
    if (!listening) throw new Error(`listener exited with ${child.exitCode}`);
    return l;
  }

  /** the messages' fields, one entry per datagram (a datagram may carry several lines) */
  count(field: string): number {
    return this.messages.filter((m) => m.split('\n').includes(field)).length;
  }

  indexOf(field: string, from = 0): number {
    return this.messages.findIndex((m, i) => i >= from && m.split('\n').includes(field));
  }

  async waitFor(field: string, what: string, n = 1): Promise<void> {
    await until(() => this.count(field) >= n, 30_000, `${what} (${field} x${n}; got ${JSON.stringify(this.messages.slice(-5))})`);
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const work = mkdtempSync(join(tmpdir(), 'inspector-sdnotify-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function listen(address = join(work, `notify-${Math.random().toString(36).slice(2)}.sock`)): Promise<NotifyListener> {
  const l = await NotifyListener.start(address);
  cleanups.push(() => l.stop());
  return l;
}

function notifier(opts: ConstructorParameters<typeof SystemdNotifier>[0]): SystemdNotifier {
  const n = new SystemdNotifier(opts);
  cleanups.push(() => n.close());
  return n;
}

describe('watchdogPingMs: when and how often to ping, as sd_watchdog_enabled reads the environment', () => {
  it('pings at half of WATCHDOG_USEC, for this process only', () => {
    expect(watchdogPingMs({ WATCHDOG_USEC: '10000000' }, 42)).toBe(5000);
    expect(watchdogPingMs({ WATCHDOG_USEC: '10000000', WATCHDOG_PID: '42' }, 42)).toBe(5000);
    expect(watchdogPingMs({ WATCHDOG_USEC: '10000000', WATCHDOG_PID: '43' }, 42)).toBeNull(); // meant for another process
    expect(watchdogPingMs({}, 42)).toBeNull();
    expect(watchdogPingMs({ WATCHDOG_USEC: '0' }, 42)).toBeNull();
    expect(watchdogPingMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeNull();
  });
});

describe('partLoopLiveness: the station is stuck when frames arrive and the part loop deals with none for stallMs', () => {
  const probe = () => {
    const s: ProgressSample = { frames: 0, handled: 0 };
    let t = 0;
    return { s, advance: (ms: number) => { t += ms; }, alive: partLoopLiveness(() => ({ ...s }), 10_000, () => t) };
  };

  it('frames arriving and dealt with: alive throughout', () => {
    const p = probe();
    for (let i = 0; i < 20; i++) {
      p.s.frames += 100; p.s.handled += 97; p.advance(5000);
      expect(p.alive(), `tick ${i}`).toBe(true);
    }
  });

  it('frames arriving, none dealt with: alive until stallMs have passed, then not; alive again at the next one dealt with', () => {
    const p = probe();
    expect(p.alive()).toBe(true); // first look
    p.s.frames += 100; p.advance(5000);
    expect(p.alive()).toBe(true); // waiting since now
    p.s.frames += 100; p.advance(5000);
    expect(p.alive()).toBe(true); // 5 s
    p.s.frames += 100; p.advance(5000);
    expect(p.alive()).toBe(false); // 10 s of frames and no verdict
    p.s.frames += 100; p.advance(5000);
    expect(p.alive()).toBe(false);
    p.s.frames += 100; p.s.handled += 1; p.advance(5000);
    expect(p.alive()).toBe(true);
  });

  it('no frames (camera down or line standing still): alive, however long', () => {
    const p = probe();
    for (let i = 0; i < 20; i++) {
      p.advance(5000);
      expect(p.alive(), `tick ${i}`).toBe(true);
    }
  });
});

describe('SystemdNotifier over a real unix datagram socket', () => {
  it('without NOTIFY_SOCKET it does nothing: no helper, no watchdog, isAlive never asked', async () => {
    let asked = 0;
    const n = notifier({ isAlive: () => { asked++; return true; }, env: { WATCHDOG_USEC: '20000' }, python: PYTHON });
    expect(n.enabled).toBe(false);
    expect(n.watchdogMs).toBeNull();
    n.ready('up');
    n.setStatus('x');
    await sleep(200); // ten would-be watchdog periods
    n.stopping();
    await n.close();
    expect(asked).toBe(0);
    expect(n.counts).toEqual({ pings: 0, withheld: 0, helperRestarts: 0 });
  });

  it('READY=1, STATUS=, WATCHDOG=1 while alive, none while not alive, again once alive, STOPPING=1', async () => {
    const l = await listen();
    let alive = true;
    let parts = 0;
    const n = notifier({
      isAlive: () => alive,
      status: () => `up: ${parts} parts`,
      env: { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) },
      python: PYTHON, logger,
    });
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBe(100);

    n.ready('station-1 running');
    await l.waitFor('READY=1', 'READY=1');
    const ready = l.messages[l.indexOf('READY=1')]!;
    expect(ready.split('\n')).toContain('STATUS=station-1 running');

    await l.waitFor('WATCHDOG=1', 'watchdog pings while alive', 3);
    parts = 7;
    await until(() => l.messages.some((m) => m.split('\n').includes('STATUS=up: 7 parts')), 30_000, 'the status line to follow the station');

    // not alive: after the tick that saw it, a marker; then at least three more ticks; then a second marker
    alive = false;
    const w0 = n.counts.withheld;
    await until(() => n.counts.withheld > w0, 30_000, 'a tick that withholds the ping');
    n.setStatus('marker-1');
    const w1 = n.counts.withheld;
    await until(() => n.counts.withheld >= w1 + 3, 30_000, 'three more withheld ticks');
    n.setStatus('marker-2');
    await l.waitFor('STATUS=marker-2', 'the second marker');
    const from = l.indexOf('STATUS=marker-1');
    const to = l.indexOf('STATUS=marker-2');
    expect(from).toBeGreaterThanOrEqual(0);
    expect(to).toBeGreaterThan(from);
    const between = l.messages.slice(from, to);
    expect(between.filter((m) => m.split('\n').includes('WATCHDOG=1'))).toEqual([]);
    // and the station said why, once (before the first marker)
    expect(l.messages.slice(0, from).some((m) => m.startsWith('STATUS=not alive'))).toBe(true);

    // alive again: pings resume
    alive = true;
    await until(() => l.messages.slice(to).some((m) => m.split('\n').includes('WATCHDOG=1')), 30_000, 'pings to resume');

    n.stopping('stopping (SIGTERM)');
    await l.waitFor('STOPPING=1', 'STOPPING=1');
    const stopping = l.messages[l.indexOf('STOPPING=1')]!;
    expect(stopping.split('\n')).toContain('STATUS=stopping (SIGTERM)');
    // no ping after STOPPING=1
    const pingsBefore = n.counts.pings;
    const after = l.indexOf('STOPPING=1');
    await sleep(500); // five would-be watchdog periods
    await n.close();
    expect(n.counts.pings).toBe(pingsBefore);
    expect(l.messages.slice(after + 1).filter((m) => m.split('\n').includes('WATCHDOG=1'))).toEqual([]);
  });

  it('an abstract-namespace NOTIFY_SOCKET (@name) is reached', async () => {
    const l = await listen(`@inline-inspector-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const n = notifier({ isAlive: () => true, env: { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '200000' }, python: PYTHON, logger });
    n.ready();
    await l.waitFor('READY=1', 'READY=1 on the abstract socket');
    await l.waitFor('WATCHDOG=1', 'a ping on the abstract socket');
  });

  it('a helper that dies is started again and the pings go on', async () => {
    const l = await listen();
    const n = notifier({ isAlive: () => true, env: { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '200000' }, python: PYTHON, logger });
    n.ready();
    await l.waitFor('WATCHDOG=1', 'pings from the first helper');
    const helper = (n as unknown as { helper: ChildProcess | null }).helper!;
    expect(helper.pid).toBeGreaterThan(0);
    helper.kill('SIGKILL');
    await until(() => n.counts.helperRestarts === 1, 30_000, 'the helper to be started again');
    const seen = l.messages.length;
    await until(() => l.messages.slice(seen).some((m) => m === 'WATCHDOG=1'), 30_000, 'pings from the second helper');
    expect((n as unknown as { helper: ChildProcess | null }).helper!.pid).not.toBe(helper.pid);
  });
});

describe('`inspector run` under a NOTIFY_SOCKET: what systemd sees from a real station', () => {
  // No PLC listens on this port: the station runs with PLC_LINK_DOWN raised, and its part
  // loop holds back every frame it cannot number (PART_SYNC). Frames keep arriving, so this
  // is also the case the liveness check must not mistake for a stuck loop.
  let plcPort: number;
  beforeAll(async () => { plcPort = await freePort(); });

  it('READY=1 once the station runs, watchdog pings past the stall window with the PLC down, STOPPING=1 on SIGTERM, a clean exit', async () => {
    const l = await listen();
    const repo = resolve('.');
    const dir = mkdtempSync(join(work, 'station-'));
    // as the unit runs it: its own working directory, absolute paths into the checkout
    const config = {
      camera: {
        template: 'replay', partIds: 'frame-count', rate: 30,
        folder: join(repo, 'test-images/test/parts'), cacheDir: join(repo, 'var/replay-cache'),
      },
      model: { packageDir: join(repo, 'models/default/1.0.0'), providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 2 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}` },
      results: { saveImages: 'none' },
      registry: { goldenDir: join(repo, 'test-images/test') },
      server: { enabled: false },
      retention: { enabled: false },
    };
    writeFileSync(join(dir, 'station.json'), JSON.stringify(config));
    const child = spawn(process.execPath, [join(repo, 'bin/inspector.js'), 'run', '--config', join(dir, 'station.json')], {
      cwd: dir,
      // pings every second; no WATCHDOG_PID (systemd sets it to the main PID, unknown before the spawn)
      env: { ...process.env, NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '2000000', INSPECTOR_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.once('exit', (code, signal) => { exit = { code, signal }; });
    cleanups.push(() => { if (exit === null) child.kill('SIGKILL'); });

    await until(() => l.count('READY=1') > 0 || exit !== null, 120_000, 'the station to start (READY=1)');
    expect(exit, 'the station exited before READY=1').toBeNull();
    const ready = l.messages[l.indexOf('READY=1')]!;
    expect(ready).toMatch(/^READY=1\nSTATUS=(up|degraded|down): \d+ parts; camera \w+ \(\d+ frames\), model default@1\.0\.0 up, plc down/);
    const readyAt = l.indexOf('READY=1');

    // the camera delivers: a later status line counts frames
    await until(() => l.messages.some((m) => /STATUS=\w+: \d+ parts; camera up \([1-9]\d* frames\)/.test(m)), 60_000, 'a status line with frames');
    // twelve pings a second apart: past the 10 s stall window, with frames arriving all along
    await until(() => l.messages.slice(readyAt).filter((m) => m.split('\n').includes('WATCHDOG=1')).length >= 12 || exit !== null,
      120_000, 'twelve watchdog pings');
    expect(exit).toBeNull();
    expect(l.messages.filter((m) => m.includes('not alive'))).toEqual([]);
    const frames = l.messages.map((m) => /camera up \((\d+) frames\)/.exec(m)?.[1]).filter((f) => f !== undefined).map(Number);
    expect(frames.at(-1)!).toBeGreaterThan(frames[0]!);

    child.kill('SIGTERM');
    await l.waitFor('STOPPING=1', 'STOPPING=1 after SIGTERM');
    await until(() => exit !== null, 90_000, 'the station process to exit after SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const stoppingAt = l.indexOf('STOPPING=1');
    expect(l.messages.slice(stoppingAt + 1).filter((m) => m.includes('WATCHDOG=1'))).toEqual([]);
  }, 300_000);
});

describe('deploy/: the unit, the example config and the install script as shipped', () => {
  const repo = resolve('.');
  const unitText = readFileSync('deploy/systemd/inline-inspector.service', 'utf8');
  /** the [Service] etc. assignments, key → values in order (comments and blank lines dropped) */
  const directives = new Map<string, string[]>();
  for (const line of unitText.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string): string | undefined => directives.get(k)?.[0];

  it('the unit: notify service with a watchdog, restarted on failure, logging to journald, as a dedicated user', () => {
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('all'); // the notify helper is a child process
    expect(one('WatchdogSec')).toBe('10s');
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartSec')).toBe('1s');
    expect(one('StartLimitIntervalSec')).toBe('0');
    expect(one('StandardOutput')).toBe('journal');
    expect(directives.get('Environment')).toContain('UV_THREADPOOL_SIZE=16');
    expect(one('User')).toBe('inspector');
    expect(one('WorkingDirectory')).toBe('/var/lib/inline-inspector');
    for (const k of ['NoNewPrivileges', 'PrivateTmp']) expect(one(k), k).toBe('yes');
    expect(one('ProtectSystem')).toBe('full');
    // the command the install script completes: node, this checkout's bin/inspector.js, `run` with the installed config
    expect(one('ExecStart')).toBe('/usr/bin/node /opt/inline-inspector/bin/inspector.js run --config /etc/inline-inspector/station.json');
    expect(existsSync('bin/inspector.js')).toBe(true);
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('the unit: systemd-analyze verify finds nothing to say', () => {
    const dir = mkdtempSync(join(work, 'unit-'));
    const file = join(dir, 'inline-inspector.service');
    // as the install script writes it: this checkout's path and this node
    writeFileSync(file, unitText.replaceAll('/opt/inline-inspector', repo).replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `));
    const r = spawnSync('/usr/bin/systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });

  it('the example config is valid for this station code, with the checkout path filled in', () => {
    const dir = mkdtempSync(join(work, 'config-'));
    const file = join(dir, 'station.json');
    writeFileSync(file, readFileSync('deploy/station.example.json', 'utf8').replaceAll('/opt/inline-inspector', repo));
    const config = resolveConfig({}, file);
    expect(config.model.packageDir).toBe('models/default/1.0.0'); // inside the registry root: promotions survive restarts
    expect(config.registry.root).toBe('models');
    expect(config.camera.folder).toBe(join(repo, 'test-images/test/parts'));
  });

  it('the install script is valid bash and guards itself (root, systemd, not CI)', () => {
    const r = spawnSync('bash', ['-n', 'scripts/install-service.sh'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync('scripts/install-service.sh', 'utf8');
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(text).toContain('[ "$(id -u)" -eq 0 ] || die');
    expect(text).toContain('[ -d /run/systemd/system ] || die');
    expect(text).toContain('[ -z "${CI:-}" ] || die');
  });
});
