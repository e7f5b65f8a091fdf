/**
 * The vision server's tail of the results database (vision-server/result-tail.ts) on a real
 * SQLite file in WAL mode: every new row once, in order, nothing from before the tail started;
 * a 'not_seen' row is held and reported as the inspection record later made it; the 40100
 * ResultState of each kind of row.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { migrate } from '../inspector/results/results-schema.js';
import { ResultTail, partIdOf, resultStateOf, type TailRow } from '../inspector/vision-server/result-tail.js';
import { until } from './helpers/wait.js';

const require = createRequire(import.meta.url);
const work = mkdtempSync(join(tmpdir(), 'inspector-vision-tail-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('result tail', () => {
  it('hands on each new row once, holds a not_seen row until its record may have come', async () => {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(join(work, 'results.sqlite'));
    db.pragma('journal_mode = WAL');
    migrate(db);
    const insert = db.prepare(`INSERT INTO results (run_id, seq, captured_at_ms, verdict, code, score, model_name, model_version, provider,
      plc_status, line_epoch, part_id, reason) VALUES ('r', @seq, 1000, @verdict, @code, 0.1, 'default', '1.0.0', 'cpu', 'acked', 9, @part, @reason)`);
    insert.run({ seq: 1, verdict: 'pass', code: 0, part: 1, reason: null }); // before the tail: not an event
    const got: TailRow[] = [];
    const tail = new ResultTail(join(work, 'results.sqlite'), (r) => got.push(r), 1000, 50);
    try {
      insert.run({ seq: 2, verdict: 'reject', code: 1, part: 2, reason: null });
      insert.run({ seq: 3, verdict: 'reject', code: 6, part: 3, reason: 'not_seen' }); // the gate outcome came first
      insert.run({ seq: 4, verdict: 'reject', code: 7, part: 4, reason: 'inspection_stopped' });
      expect(tail.poll()).toBe(3);
      expect(got.map((r) => r.part_id)).toEqual([2, 4]); // 3 is held
      // the inspection record of part 3 completes its row meanwhile
      db.prepare(`UPDATE results SET verdict = 'pass', code = 0, reason = NULL WHERE part_id = 3`).run();
      await until(() => { tail.poll(); return got.length === 3; }, 10_000, 'the held row');
      expect(got.map((r) => r.part_id)).toEqual([2, 4, 3]);
      expect(got.map((r) => resultStateOf(r))).toEqual([1, 3, 1]);
      expect(partIdOf(got[2]!)).toBe('9/3');
      expect(tail.poll()).toBe(0);
      expect(tail.rows).toBe(3);
    } finally {
      tail.close();
      db.close();
    }
  });

  it('ResultState: judged 1 Completed, stopped 3 Aborted, not judged 4 Failed', () => {
    expect(resultStateOf({ code: 0, reason: null })).toBe(1);
    expect(resultStateOf({ code: 1, reason: null })).toBe(1);
    expect(resultStateOf({ code: 4, reason: null })).toBe(1); // unregistrable: judged (a reject)
    expect(resultStateOf({ code: 5, reason: 'inference_timeout' })).toBe(4);
    expect(resultStateOf({ code: 2, reason: null })).toBe(4);
    expect(resultStateOf({ code: 6, reason: 'dropped' })).toBe(4);
    expect(resultStateOf({ code: 7, reason: 'inspection_stopped' })).toBe(3);
  });
});
