/**
 * The shared progress reporter (inspector/core/progress.ts) and the trainer's
 * (models/training/progress.py): on a stream that is not a terminal, a plain
 * line `label: done/total (pct %), rate, ETA t` from a timer, from update()
 * once the interval has passed (work that blocks the event loop), and at the
 * end; nothing with `enabled: false`. Clocks are injected: the assertions are
 * on content, never on elapsed time.
 */
import { describe, it, expect, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createProgress, defaultProgressIntervalMs, formatDuration, progressLine } from '../inspector/core/progress.js';
import { exportProgressReporter } from '../inspector/export/run-export.js';

const run = promisify(execFile);

/** A stream that is not a terminal and keeps what is written. */
function fakeStream(): { isTTY: false; lines: string[]; write(s: string): boolean } {
  const lines: string[] = [];
  return { isTTY: false, lines, write(s: string) { lines.push(...s.split('\n').filter(Boolean)); return true; } };
}

describe('progress lines', () => {
  it('formats done/total, percentage, rate and ETA', () => {
    expect(progressLine('eval', 120, 300, 120 / 2.1)).toBe('eval: 120/300 (40 %), 2.1/s, ETA 1m26s');
    expect(progressLine('teach read', 0, 10, 3)).toBe('teach read: 0/10 (0 %), 0/s, ETA ?');
    expect(progressLine('export hash', 30, 60, 60)).toBe('export hash: 30/60 (50 %), 30.0/min, ETA 1m00s');
    expect(progressLine('eval', 300, 300, 3725)).toBe('eval: 300/300 (100 %), 4.8/min, ETA 0s (done in 1h02m05s)');
    expect(formatDuration(5)).toBe('5s');
    expect(formatDuration(86)).toBe('1m26s');
    expect(formatDuration(Number.NaN)).toBe('?');
    expect(defaultProgressIntervalMs({})).toBe(30_000);
    expect(defaultProgressIntervalMs({ INSPECTOR_PROGRESS_INTERVAL_MS: '250' })).toBe(250);
    expect(defaultProgressIntervalMs({ INSPECTOR_PROGRESS_INTERVAL_MS: 'x' })).toBe(30_000);
  });

  it('not a terminal: a line from the timer while nothing moves, and a final line', async () => {
    const stream = fakeStream();
    let t = 0;
    const p = createProgress({ label: 'eval', stream, intervalMs: 5, now: () => t });
    p.start(300);
    p.update(120);
    t = (120 / 2.1) * 1000;
    // no update() from here on: only the timer can write
    await vi.waitFor(() => expect(stream.lines.length).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 5 });
    expect(stream.lines[0]).toBe('eval: 120/300 (40 %), 2.1/s, ETA 1m26s');
    const before = stream.lines.length;
    p.update(300);
    p.stop();
    p.stop();                                             // idempotent
    expect(stream.lines.length).toBeGreaterThanOrEqual(before + 1);
    expect(stream.lines.at(-1)).toMatch(/^eval: 300\/300 \(100 %\), .*ETA 0s \(done in 57s\)$/);
    const n = stream.lines.length;
    await new Promise((r) => setTimeout(r, 30));          // the timer is gone after stop()
    expect(stream.lines.length).toBe(n);
  });

  it('update() writes once the interval has passed even if the timer could not run (blocked loop)', () => {
    const stream = fakeStream();
    let t = 0;
    const p = createProgress({ label: 'teach register', stream, intervalMs: 30_000, now: () => t });
    p.start(10);
    t = 29_999;
    p.update(3);
    expect(stream.lines).toEqual([]);                     // not yet 30 s since the start
    t = 30_000;
    p.update(4);
    expect(stream.lines).toEqual(['teach register: 4/10 (40 %), 8.0/min, ETA 45s']);
    t = 45_000;
    p.update(5);
    expect(stream.lines.length).toBe(1);                  // 15 s since the last line
    p.stop();
    expect(stream.lines.at(-1)).toBe('teach register: 5/10 (50 %), 6.7/min, ETA 45s');
  });

  it('enabled: false writes nothing; a terminal gets the bar, not the plain lines', () => {
    const quiet = fakeStream();
    let t = 0;
    const p = createProgress({ label: 'eval', stream: quiet, intervalMs: 1, now: () => t, enabled: false });
    p.start(2); t = 10; p.update(1); p.stop();
    expect(quiet.lines).toEqual([]);
    const written: string[] = [];
    const tty = { isTTY: true, columns: 80, write: (s: string) => { written.push(s); return true; },
      cursorTo: () => true, clearLine: () => true, moveCursor: () => true, clearScreenDown: () => true, on: () => tty, removeListener: () => tty };
    const bar = createProgress({ label: 'eval', stream: tty, intervalMs: 1, now: () => t });
    bar.start(4); t = 1000; bar.update(2); bar.stop();
    const out = written.join('');
    expect(out).toContain('eval [');
    expect(out).not.toContain('eval: 2/4');
  });

  it('export: one reporter per phase (write, hash), each with its final line', () => {
    const stream = fakeStream();
    const r = exportProgressReporter({ stream, intervalMs: 60_000 });
    r.onProgress({ phase: 'select', done: 0, total: 0 });
    r.onProgress({ phase: 'write', done: 0, total: 3 });
    for (let i = 1; i <= 3; i++) r.onProgress({ phase: 'write', done: i, total: 3 });
    r.onProgress({ phase: 'hash', done: 1, total: 2 });
    r.onProgress({ phase: 'hash', done: 2, total: 2 });
    r.onProgress({ phase: 'done', done: 3, total: 3 });
    r.stop();
    expect(stream.lines.map((l) => l.split(',')[0])).toEqual(['export write: 3/3 (100 %)', 'export hash: 2/2 (100 %)']);
  });
});

describe('the trainer\'s progress lines (models/training/progress.py)', () => {
  it('print the same line as the CLIs: from update() once the interval has passed, and at the end', async () => {
    const script = `
import io, sys
sys.path.insert(0, 'models/training')
from progress import Progress, progress_line
t = [0.0]
out = io.StringIO()
p = Progress('train (steps)', 300, interval_s=30, stream=out, clock=lambda: t[0])
t[0] = 29.0; p.update(60)
t[0] = 120 / 2.1; p.update(120, ' (epoch 2/5)')
t[0] = 60.0; p.update(125)
t[0] = 75.0; p.update(300); p.close(); p.close()
print(out.getvalue(), end='')
print(progress_line('eval', 120, 300, 120 / 2.1))
`;
    const { stdout } = await run('python3', ['-c', script], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(stdout.trim().split('\n')).toEqual([
      'train (steps): 120/300 (40 %), 2.1/s, ETA 1m26s (epoch 2/5)',
      'train (steps): 300/300 (100 %), 4.0/s, ETA 0s (done in 1m15s)',
      progressLine('eval', 120, 300, 120 / 2.1),
    ]);
  });
});
