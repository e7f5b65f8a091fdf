/**
 * The short soak of CI: `npm run soak` for real (PLC simulator process with its line clock, the
 * station as `inspector run` under its restarting supervisor, SQLite on disk), with every fault
 * injected once: plc-restart (kill -9), station-kill (kill -9), camera-loss, inference-kill,
 * model-swap. Its report must show the line truth: no escape, no wrong-part result, every part
 * with exactly one row, the file intact, and the line accepting parts again after each fault.
 * Timings are reported by the soak, never asserted here.
 */
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FAULTS = ['plc-restart', 'station-kill', 'camera-loss', 'inference-kill', 'model-swap'];

describe('npm run soak (short, every fault once)', () => {
  it('reports 0 escapes, 0 wrong-part results, one row per part, and recovers from every fault', async () => {
    const work = mkdtempSync(join(tmpdir(), 'inspector-soak-test-'));
    const json = join(work, 'report.json');
    try {
      // 20 parts/s: each fault gets ~20 s of line after it, more than a station restart takes on a loaded box
      const args = ['scripts/soak.ts', '--parts', '2400', '--rate', '20', '--faults', FAULTS.join(','), '--json', json,
        '--work', join(work, 'w'), '--save-images', 'rejects'];
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn('npx', ['tsx', ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, UV_THREADPOOL_SIZE: '16' } });
        child.on('exit', (c) => resolve(c));
      });
      const r = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown> & {
        faults: Array<{ fault: string; ok: boolean; resyncMs: number | null }>; failures: string[]; epochs: unknown[];
        notInspected: Record<string, number>; gate: Record<string, number>;
      };
      expect(r.failures).toEqual([]);
      expect(code).toBe(0);
      expect(r.faults.map((f) => f.fault)).toEqual(FAULTS);
      for (const f of r.faults) {
        expect(f.ok, `${f.fault} injected`).toBe(true);
        expect(f.resyncMs, `${f.fault}: the line accepted parts again`).not.toBeNull();
      }
      expect(r.escapesAtPlc).toBe(0);
      expect(r.escapesInRows).toBe(0);
      expect(r.wrongPartResults).toBe(0);
      expect(r.partsWithoutRow).toBe(0);
      expect(r.duplicateRows).toBe(0);
      expect(r.integrity).toBe('ok');
      expect(r.epochs.length).toBe(2); // the PLC restart renumbered the parts
      expect(r.photoEyeParts as number).toBeGreaterThanOrEqual(2400);
      expect(r.rows).toBe(r.photoEyeParts);
      // rows whose outcome is unknown belong to the PLC that was killed before the station read them
      expect(r.outcomeUnknown).toBe(r.outcomeUnknownOfKilledPlc);
      expect(r.stationRestarts).toBe(1);
      expect(r.inspected as number).toBeGreaterThan(0);
      expect((r.gate.accepted ?? 0)).toBeGreaterThan(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 900_000);
});
