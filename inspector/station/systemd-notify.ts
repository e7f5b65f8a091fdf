/**
 * systemd's notify protocol (sd_notify(3)) for a station run as a `Type=notify`
 * service with a watchdog (deploy/systemd/inline-inspector.service):
 *
 *   READY=1      once Station.start() has resolved
 *   STATUS=...   a one-line summary (`systemctl status` shows it)
 *   WATCHDOG=1   every WATCHDOG_USEC/2, but only while `isAlive()` says the station
 *                is worth keeping; without pings systemd kills and restarts it
 *   STOPPING=1   on shutdown
 *
 * A no-op when NOTIFY_SOCKET is absent (a shell, the tests, the demo).
 *
 * How the datagrams are sent. The protocol is one AF_UNIX SOCK_DGRAM datagram per
 * message to the address in NOTIFY_SOCKET (a path, or '@name' for Linux's abstract
 * namespace). Node 20 cannot open such a socket (`net` is stream-only, `dgram` is
 * UDP-only), so the choice was between
 *   - a native addon (`sd-notify` wraps libsystemd's sd_notify and needs
 *     libsystemd-dev plus a node-gyp build; `unix-dgram` likewise builds with
 *     node-gyp): one more native build in `npm ci`, a package-lock change, and an
 *     addon whose failure to load would take the station down with it;
 *   - spawning `systemd-notify` per message: racy on Debian 12's systemd 252 (the
 *     sender exits before systemd reads its cgroup, so the message can be dropped
 *     or attributed to no unit; `--pid=` cannot fake credentials without
 *     CAP_SYS_ADMIN), and a fork every 5 s;
 *   - one long-lived helper child that reads messages on its stdin and sends each as
 *     a datagram: a dozen lines of Python (python3 is on every station: setup.sh
 *     installs the trainer's PyTorch with it), no build, no race (it lives as long as
 *     the station, in the service's cgroup).
 * This module does the third. The messages come from the helper's PID, so the unit
 * says NotifyAccess=all (which admits processes of the service's own cgroup only).
 * Liveness still means the station's main thread: the timer that decides on a ping
 * runs on its event loop, so a blocked loop sends nothing. If the helper dies it is
 * started again (backoff 1 s .. 30 s); a helper that cannot run at all means no
 * READY=1 and no pings, and systemd fails the start or restarts the station: loud,
 * never a silent hang.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from '../core/logger.js';

/**
 * The helper: one message per stdin line (JSON-encoded, so a message may hold
 * newlines, e.g. "READY=1\nSTATUS=..."), one datagram per message. A message that
 * cannot be sent (systemd restarting, socket gone) is reported on stderr and
 * skipped. It ends with its stdin, i.e. with the station.
 */
const HELPER = String.raw`
import json, os, socket, sys
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setblocking(True)
for line in sys.stdin.buffer:
    try:
        s.sendto(json.loads(line).encode("utf-8"), addr)
    except Exception as e:
        sys.stderr.write("sd_notify send failed: %r\n" % (e,))
        sys.stderr.flush()
`;

export interface SystemdNotifierOptions {
  /**
   * Asked before each watchdog ping: false withholds it. Must be cheap and must not
   * throw (a throw counts as false).
   */
  isAlive: () => boolean;
  /** a one-line STATUS= text, asked at each watchdog tick; sent when it changed */
  status?: () => string;
  /** defaults to process.env (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) */
  env?: NodeJS.ProcessEnv;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** the helper's interpreter; default /usr/bin/python3 (Debian's), else python3 on PATH */
  python?: string;
}

/**
 * The watchdog interval in ms from the environment, as sd_watchdog_enabled(3)
 * reads it: WATCHDOG_USEC (> 0) and, when set, WATCHDOG_PID must be this process.
 * Pings go at half the timeout. Null: no watchdog for us.
 */
export function watchdogPingMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/** STATUS= holds one line: no newlines, bounded length. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

export class SystemdNotifier {
  /** false when NOTIFY_SOCKET is absent: every method does nothing */
  readonly enabled: boolean;
  /** ms between watchdog ticks, or null when systemd runs no watchdog for this process */
  readonly watchdogMs: number | null;
  /** watchdog pings sent and withheld (isAlive false), for logs and tests */
  readonly counts = { pings: 0, withheld: 0, helperRestarts: 0 };

  private helper: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private respawnTimer: NodeJS.Timeout | null = null;
  private respawnDelayMs = 1000;
  private closed = false;
  private alive = true;
  private lastStatus = '';
  private readonly env: NodeJS.ProcessEnv;
  private readonly python: string;
  private readonly log: Pick<Logger, 'info' | 'warn' | 'error'> | null;

  constructor(private readonly opts: SystemdNotifierOptions) {
    this.env = opts.env ?? process.env;
    this.log = opts.logger ?? null;
    this.enabled = Boolean(this.env.NOTIFY_SOCKET);
    this.watchdogMs = this.enabled ? watchdogPingMs(this.env) : null;
    this.python = opts.python ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    if (!this.enabled) return;
    this.startHelper();
    if (this.watchdogMs !== null) {
      // unref: the station's own handles keep the process up, not the watchdog
      this.timer = setInterval(() => this.tick(), this.watchdogMs);
      this.timer.unref();
    }
  }

  /** READY=1 (with a STATUS= line when given): start-up is complete. */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
    if (status !== undefined) this.lastStatus = oneLine(status);
    this.log?.info({ watchdogMs: this.watchdogMs }, 'systemd: ready');
  }

  /** STATUS=...: what `systemctl status` shows. */
  setStatus(text: string): void {
    const line = oneLine(text);
    this.lastStatus = line;
    this.send(`STATUS=${line}`);
  }

  /** STOPPING=1: the station is shutting down; watchdog pings end here. */
  stopping(status?: string): void {
    this.stopTimer();
    this.send(status === undefined ? 'STOPPING=1' : `STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** Stop pinging and let the helper send what is queued, then end it. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    const h = this.helper;
    this.helper = null;
    if (!h || h.exitCode !== null || h.signalCode !== null) return;
    // EOF on its stdin: it sends what it has read (STOPPING=1), then exits. Held (ref) while
    // waiting for that, or a process with nothing else left would end mid-await.
    h.ref();
    const exited = new Promise<void>((resolve) => h.once('exit', () => resolve()));
    h.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), 2000); });
    const how = await Promise.race([exited.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (how === 'timeout') h.kill('SIGKILL');
  }

  /** One watchdog tick: ping while alive, withhold (and say so, once) while not. */
  private tick(): void {
    let alive: boolean;
    try {
      alive = this.opts.isAlive();
    } catch (err) {
      this.log?.error({ err }, 'systemd: isAlive() threw: counted as not alive');
      alive = false;
    }
    if (alive) {
      if (!this.alive) this.log?.warn('systemd: station alive again: watchdog pings resumed');
      this.alive = true;
      let status: string | null = null;
      if (this.opts.status) {
        try { status = oneLine(this.opts.status()); } catch { status = null; }
      }
      const changed = status !== null && status !== this.lastStatus;
      if (changed) this.lastStatus = status!;
      this.send(changed ? `WATCHDOG=1\nSTATUS=${status}` : 'WATCHDOG=1');
      this.counts.pings++;
    } else {
      if (this.alive) {
        this.log?.error({ watchdogMs: this.watchdogMs }, 'systemd: station not alive: watchdog pings withheld, systemd will restart it');
        this.send('STATUS=not alive: part loop stuck, watchdog pings withheld');
        this.lastStatus = '';
      }
      this.alive = false;
      this.counts.withheld++;
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private send(message: string): void {
    if (!this.enabled || this.closed) return;
    const h = this.helper;
    if (!h?.stdin || h.stdin.destroyed || !h.stdin.writable) return; // between helper restarts: the next tick sends again
    h.stdin.write(`${JSON.stringify(message)}\n`);
  }

  private startHelper(): void {
    // -I: isolated (no PYTHON* variables, no user site-packages); -u: unbuffered
    const h = spawn(this.python, ['-I', '-u', '-c', HELPER], { env: this.env, stdio: ['pipe', 'ignore', 'pipe'] });
    this.helper = h;
    // the helper never keeps the station's process alive: it ends with its stdin (EOF) when the station does
    h.unref();
    (h.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null)?.unref?.();
    (h.stderr as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
    const startedAt = Date.now();
    // a write to a helper that just died must not throw out of the station
    h.stdin?.on('error', (err) => this.log?.warn({ err }, 'systemd: notify helper stdin'));
    h.stderr?.setEncoding('utf8');
    h.stderr?.on('data', (chunk: string) => this.log?.warn({ helper: chunk.trim() }, 'systemd: notify helper'));
    // a failed spawn emits 'error' and may or may not emit 'exit': either one starts it again, once
    const lost = (why: Record<string, unknown>): void => {
      if (this.closed || this.helper !== h) return;
      this.helper = null;
      if (Date.now() - startedAt > 60_000) this.respawnDelayMs = 1000; // it had run fine for a while
      this.log?.error({ ...why, python: this.python, retryMs: this.respawnDelayMs }, 'systemd: notify helper lost: starting it again');
      this.respawnTimer = setTimeout(() => {
        this.respawnTimer = null;
        if (this.closed) return;
        this.counts.helperRestarts++;
        this.startHelper();
      }, this.respawnDelayMs);
      this.respawnTimer.unref();
      this.respawnDelayMs = Math.min(30_000, this.respawnDelayMs * 2);
    };
    h.on('error', (err) => lost({ err }));
    h.on('exit', (code, signal) => lost({ code, signal }));
  }
}

/**
 * What the liveness check reads from a station: the camera's frame counter and the
 * number of frames its part loop has dealt with (a verdict, or a frame held back
 * because its part id could not be tied to the PLC's numbering).
 */
export interface ProgressSample { frames: number; handled: number }

/**
 * The station's `isAlive` for the watchdog: the part loop is stuck when frames keep
 * arriving from the camera and the loop has dealt with none of them for `stallMs`.
 * Without frames (camera down and being restarted by the capture host, a line
 * standing still, a triggered camera between parts) nothing is expected, so the
 * station is alive: restarting the process would not bring a camera back. Nor is
 * a PLC that is down a reason: the loop still deals with every frame (it holds
 * back those it cannot number, counted), so `handled` advances.
 *
 * The run command samples `station.health().camera.frames` (written by the capture
 * worker into the shared frame ring, so it advances even when the main thread's
 * part loop does not) and `station.loop.rec.parts + partSyncErrors`. A hung
 * inference worker is caught by the part loop itself (its deadline makes an
 * INFERENCE_TIMEOUT part, which counts). A blocked event loop needs no check here:
 * the tick that would ask never runs.
 */
export function partLoopLiveness(sample: () => ProgressSample, stallMs: number, now: () => number = Date.now): () => boolean {
  let last: ProgressSample | null = null;
  let waitingSince: number | null = null; // frames arrived and none was dealt with since then
  return () => {
    const cur = sample();
    const t = now();
    if (last === null || cur.handled !== last.handled) {
      waitingSince = null; // the loop dealt with a frame (or this is the first look): progress
    } else if (cur.frames !== last.frames) {
      waitingSince ??= t; // frames came, the loop dealt with none
    } else {
      waitingSince = null; // no frames: nothing to wait for
    }
    last = cur;
    return waitingSince === null || t - waitingSince < stallMs;
  };
}
