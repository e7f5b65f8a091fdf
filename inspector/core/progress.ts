/**
 * One progress reporter for the long offline commands (eval, teach, export;
 * the Python trainer prints the same line, models/training/progress.py):
 *
 *  - on a terminal: a cli-progress bar on stderr;
 *  - otherwise (output redirected to a file, a CI log, systemd): a plain line
 *    on stderr at least every `intervalMs` (default 30 s) and once at the end:
 *
 *      eval: 120/300 (40 %), 2.1/s, ETA 1m26s
 *
 * The line is written from a timer (unref'd, so it never keeps the process
 * alive) and, because the work between two updates may block the event loop
 * (teaching is synchronous JS), also from update() when the interval has
 * passed since the last line. Rate = done / seconds since start(); ETA =
 * (total − done) / rate.
 *
 *   const p = createProgress({ label: 'eval' });
 *   p.start(pairs.length);
 *   for (...) { ...; p.update(i + 1); }
 *   p.stop();
 *
 * Everything time-related is injectable (`intervalMs`, `now`) so tests need
 * neither a terminal nor 30 s.
 */
import cliProgress from 'cli-progress';

export const PROGRESS_INTERVAL_MS = 30_000;

/** The default interval: INSPECTOR_PROGRESS_INTERVAL_MS when set (a positive number), else 30 s. */
export function defaultProgressIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.INSPECTOR_PROGRESS_INTERVAL_MS);
  return Number.isFinite(v) && v > 0 ? v : PROGRESS_INTERVAL_MS;
}

/** The part of a stream the reporter needs (process.stderr, or a fake in tests). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** what is counted: 'eval', 'teach', 'export write' */
  label: string;
  /** default process.stderr */
  stream?: ProgressStream;
  /** a plain line at least this often when the stream is not a terminal (default 30 s, or INSPECTOR_PROGRESS_INTERVAL_MS) */
  intervalMs?: number;
  /** false: report nothing (`--no-progress`) */
  enabled?: boolean;
  /** clock in ms (default performance.now) */
  now?: () => number;
}

export interface Progress {
  /** start counting (again): resets the clock for the rate */
  start(total: number, done?: number): void;
  /** `done` of `total` (total: when it changes) */
  update(done: number, total?: number): void;
  /** the final line (plain) or the bar's last state; idempotent */
  stop(): void;
  /** the plain line for the current state (what the timer writes) */
  line(): string;
}

/** 86 s → "1m26s", 5 s → "5s", 3725 s → "1h02m05s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '0/s';
  if (perSecond >= 10) return `${perSecond.toFixed(0)}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)}/s`;
  if (perSecond >= 1 / 60) return `${(perSecond * 60).toFixed(1)}/min`;
  return `${(perSecond * 3600).toFixed(1)}/h`;
}

/** `label: done/total (pct %), rate, ETA t` from the counts and the seconds since start. */
export function progressLine(label: string, done: number, total: number, elapsedS: number): string {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
  const rate = elapsedS > 0 ? done / elapsedS : 0;
  const left = Math.max(0, total - done);
  const eta = left === 0 ? '0s' : rate > 0 ? formatDuration(left / rate) : '?';
  return `${label}: ${done}/${total} (${pct} %), ${formatRate(rate)}, ETA ${eta}`
    + (done >= total && total > 0 ? ` (done in ${formatDuration(elapsedS)})` : '');
}

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const enabled = o.enabled ?? true;
  const interval = Math.max(1, o.intervalMs ?? defaultProgressIntervalMs());
  const now = o.now ?? (() => performance.now());
  const tty = stream.isTTY === true;
  let total = 0;
  let done = 0;
  let t0 = now();
  let lastLine = t0;
  let timer: ReturnType<typeof setInterval> | null = null;
  let running = false;
  let bar: cliProgress.SingleBar | null = null;

  const line = (): string => progressLine(o.label, done, total, (now() - t0) / 1000);
  const emit = (): void => {
    lastLine = now();
    stream.write(`${line()}\n`);
  };

  return {
    line,
    start(t, d = 0) {
      total = t;
      done = d;
      t0 = now();
      lastLine = t0;
      running = true;
      if (!enabled) return;
      if (tty) {
        bar ??= new cliProgress.SingleBar({
          format: `${o.label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted}`,
          // cli-progress types want a NodeJS.WritableStream; a TTY stream is one
          stream: stream as unknown as NodeJS.WritableStream,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, done);
        return;
      }
      if (timer) clearInterval(timer);
      timer = setInterval(() => { if (running) emit(); }, interval);
      timer.unref?.();
    },
    update(d, t) {
      if (!running) return;
      done = d;
      if (t !== undefined && t !== total) { total = t; bar?.setTotal(t); }
      if (!enabled) return;
      if (bar) { bar.update(d); return; }
      // the timer cannot fire while synchronous work blocks the loop: catch up here
      if (now() - lastLine >= interval) emit();
    },
    stop() {
      if (!running) return;
      running = false;
      if (timer) { clearInterval(timer); timer = null; }
      if (!enabled) return;
      if (bar) { bar.stop(); return; }
      emit();
    },
  };
}
