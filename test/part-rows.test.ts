/**
 * Line truth in the result store (schema v4): one row per PLC-numbered part (line_epoch, part_id),
 * inspected or not, with the gate's outcome read back from the PLC. Real SQLite files through the
 * real ResultStore (store worker); no wall-clock assertions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { GateOutcome, PartReason, ResultCodeValue } from '../inspector/core/types.js';
import { ResultStore, openReadOnly, type ResultRow, type StoreRecord } from '../inspector/results/result-store.js';
import { INSERT_COLUMNS, MIGRATIONS } from '../inspector/results/results-schema.js';

const log = logger.child({ test: 'part-rows' });
let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'inspector-part-rows-')); });
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

const EPOCH = 0xdead_beef; // UInt32, above the Int32 range on purpose
const RUN = 'run-1';

function rec(seq: number, partId: number | null, o: { lineEpoch?: number | null; reason?: PartReason | null; code?: ResultCodeValue; runId?: string } = {}): StoreRecord {
  const code = o.code ?? (o.reason ? 6 : seq % 3 === 0 ? 1 : 0);
  return {
    runId: o.runId ?? RUN, seq, capturedAtMs: 1_700_000_000_000 + seq, verdict: code === 0 ? 'pass' : 'reject', code,
    score: o.reason ? Number.NaN : seq / 100, modelName: 'padim', modelVersion: '2.0.0', provider: 'cpu',
    timings: { dispatchMs: 0.5, inferenceMs: 4, frameToVerdictMs: 6, plcWriteMs: null },
    plcStatus: 'pending', sourceRef: null, imagePath: null, anomalyMapPath: null, defectClass: code === 1 ? 'scratch' : null,
    lineEpoch: partId === null ? null : (o.lineEpoch === undefined ? EPOCH : o.lineEpoch), partId, reason: o.reason ?? null,
  };
}

const gate = (partId: number, outcome: GateOutcome, fillSeq: number, o: { lineEpoch?: number; atMs?: number; runId?: string } = {}) => ({
  lineEpoch: o.lineEpoch ?? EPOCH, partId, outcome, atMs: o.atMs ?? 1_700_000_100_000 + partId,
  fill: { runId: o.runId ?? RUN, seq: fillSeq, capturedAtMs: 1_700_000_050_000 + partId },
});

const openStore = (name: string, extra: Partial<Parameters<typeof ResultStore.open>[0]> = {}): Promise<ResultStore> =>
  ResultStore.open({ dbPath: join(work, name), logger: log, ...extra });

/** Every row of the file, by a raw read-only connection (not through the store's own queries). */
function rawRows(name: string): ResultRow[] {
  const ro = openReadOnly(join(work, name));
  try { return ro.prepare('SELECT * FROM results ORDER BY id').all() as ResultRow[]; } finally { ro.close(); }
}

describe('one row per part: record and gate outcome meet on (line_epoch, part_id)', () => {
  it('outcome first (a not_seen row), then the record fills it and keeps the outcome; patches land', async () => {
    const store = await openStore('outcome-first.sqlite');
    try {
      // across batches: the outcome is committed before the record is even queued
      store.setGateOutcome(gate(1, 'accepted', 1001));
      await store.flush();
      expect(await store.part(EPOCH, 1)).toMatchObject({
        run_id: RUN, seq: 1001, captured_at_ms: 1_700_000_050_001, verdict: 'reject', code: 6, reason: 'not_seen', score: null,
        model_name: '', model_version: '', provider: '', dispatch_ms: null, inference_ms: null, frame_to_verdict_ms: null,
        plc_status: 'none', line_epoch: EPOCH, part_id: 1, gate_outcome: 'accepted', gate_outcome_at_ms: 1_700_000_100_001,
      });
      store.add(rec(1, 1));
      store.update(1, RUN, { plcWriteMs: 1.25, plcStatus: 'acked' });
      store.update(1, RUN, { imagePath: 'images/run-1/pass/1.png' });
      // in one batch: outcome, then record, then patches
      store.setGateOutcome(gate(2, 'rejected', 1002));
      store.add(rec(3, 2));
      store.update(3, RUN, { plcStatus: 'failed' });
      await store.flush();

      const p1 = await store.part(EPOCH, 1);
      expect(p1).toMatchObject({
        run_id: RUN, seq: 1, captured_at_ms: 1_700_000_000_001, verdict: 'pass', code: 0, reason: null, score: 0.01,
        model_name: 'padim', model_version: '2.0.0', provider: 'cpu', dispatch_ms: 0.5, inference_ms: 4, frame_to_verdict_ms: 6,
        plc_write_ms: 1.25, plc_status: 'acked', image_path: 'images/run-1/pass/1.png',
        gate_outcome: 'accepted', gate_outcome_at_ms: 1_700_000_100_001,
      });
      expect(await store.part(EPOCH, 2)).toMatchObject({
        seq: 3, verdict: 'reject', code: 1, defect_class: 'scratch', reason: null, plc_status: 'failed',
        gate_outcome: 'rejected', gate_outcome_at_ms: 1_700_000_100_002,
      });
      const rows = rawRows('outcome-first.sqlite');
      expect(rows).toHaveLength(2); // the fill seqs (1001, 1002) are gone with the rows they made
      expect(rows.map((r) => r.seq).sort((a, b) => a - b)).toEqual([1, 3]);
      expect(store.stats).toMatchObject({ outcomes: 2, outcomesKept: 0, duplicates: 0, quarantined: 0, inserted: 2 });
    } finally { await store.close(); }
  });

  it('record first, then the outcome fills its row; the fill is ignored even when its (run_id, seq) is taken', async () => {
    const store = await openStore('record-first.sqlite');
    try {
      store.add(rec(10, 7));
      store.add(rec(11, 8));
      await store.flush();
      // the fill's (run_id, seq) is part 8's: the (line_epoch, part_id) conflict decides, no constraint error
      store.setGateOutcome(gate(7, 'rejected', 11));
      // and the station used the part's own seq as the fill: same thing
      store.setGateOutcome(gate(8, 'accepted', 11));
      await store.flush();
      expect(await store.part(EPOCH, 7)).toMatchObject({ seq: 10, code: 0, verdict: 'pass', plc_status: 'pending', reason: null, gate_outcome: 'rejected' });
      expect(await store.part(EPOCH, 8)).toMatchObject({ seq: 11, code: 0, verdict: 'pass', plc_status: 'pending', reason: null, gate_outcome: 'accepted' });
      expect(await store.count()).toBe(2);
      expect(store.stats).toMatchObject({ outcomes: 2, outcomesKept: 0, quarantined: 0 });

      // outcome first with the part's own seq as the fill, then the record: still one row, the record's
      store.setGateOutcome(gate(9, 'accepted', 12));
      store.add(rec(12, 9));
      await store.flush();
      expect(await store.part(EPOCH, 9)).toMatchObject({ seq: 12, code: 1, verdict: 'reject', model_name: 'padim', plc_status: 'pending', gate_outcome: 'accepted' });
      expect(await store.count()).toBe(3);
      expect(store.stats.quarantined).toBe(0);
    } finally { await store.close(); }
  });

  it('first decision wins, except timeout → late', async () => {
    const store = await openStore('outcomes.sqlite');
    try {
      for (let p = 1; p <= 6; p++) store.add(rec(p, p));
      const sequence: Array<[number, GateOutcome, number]> = [
        [1, 'timeout', 1], [1, 'late', 2],         // allowed: the result reached the PLC after the window
        [2, 'accepted', 3], [2, 'timeout', 4],     // not overwritten by a timeout
        [3, 'late', 5], [3, 'timeout', 6],         // late stays late
        [4, 'timeout', 7], [4, 'accepted', 8],     // a timeout is not replaced by a decision
        [5, 'accepted', 9], [5, 'rejected', 10],   // first decision wins
        [6, 'rejected', 11], [6, 'late', 12],      // late replaces only a timeout
      ];
      for (const [p, outcome, at] of sequence) store.setGateOutcome(gate(p, outcome, 100 + at, { atMs: at }));
      await store.flush();
      const got = await Promise.all([1, 2, 3, 4, 5, 6].map(async (p) => {
        const r = await store.part(EPOCH, p);
        return [r?.gate_outcome, r?.gate_outcome_at_ms];
      }));
      expect(got).toEqual([['late', 2], ['accepted', 3], ['late', 5], ['timeout', 7], ['accepted', 9], ['rejected', 11]]);
      expect(store.stats).toMatchObject({ gateOutcomes: 12, outcomes: 7, outcomesKept: 5, quarantined: 0 });
      // the same holds for a not_seen row made by the outcome
      store.setGateOutcome(gate(20, 'timeout', 200, { atMs: 20 }));
      store.setGateOutcome(gate(20, 'late', 201, { atMs: 21 }));
      store.setGateOutcome(gate(20, 'timeout', 202, { atMs: 22 }));
      store.setGateOutcome(gate(21, 'rejected', 203, { atMs: 23 }));
      store.setGateOutcome(gate(21, 'timeout', 204, { atMs: 24 }));
      await store.flush();
      expect(await store.part(EPOCH, 20)).toMatchObject({ seq: 200, reason: 'not_seen', gate_outcome: 'late', gate_outcome_at_ms: 21 });
      expect(await store.part(EPOCH, 21)).toMatchObject({ seq: 203, reason: 'not_seen', gate_outcome: 'rejected', gate_outcome_at_ms: 23 });
      expect(await store.count()).toBe(8);
    } finally { await store.close(); }
  });

  it('gap rows, epochs, the books (partAccounting) and lastPartId', async () => {
    const name = 'books.sqlite';
    const store = await openStore(name);
    try {
      store.startRun(RUN, {});
      // epoch A: parts 1..12; the station inspects the odd ones, drops 2, times out on 4, never sees the rest
      let fillSeq = 1000;
      for (let p = 1; p <= 12; p++) {
        if (p % 2 === 1) store.add(rec(p, p));
        else if (p === 2) store.add(rec(p, p, { reason: 'dropped' }));
        else if (p === 4) store.add(rec(p, p, { reason: 'inference_timeout', code: 5 }));
        // the gate reports parts 1..10 (11: not read back yet; 12: neither seen nor reported: no row); 10 timed out, then late
        if (p <= 10) store.setGateOutcome(gate(p, p === 10 ? 'timeout' : p % 3 === 0 ? 'rejected' : 'accepted', ++fillSeq));
      }
      store.setGateOutcome(gate(10, 'late', ++fillSeq));
      // epoch B (the PLC restarted): part ids start again at 1, in their own rows
      const B = 7;
      store.add(rec(50, 1, { lineEpoch: B }));
      store.setGateOutcome(gate(1, 'accepted', ++fillSeq, { lineEpoch: B }));
      store.setGateOutcome(gate(2, 'accepted', ++fillSeq, { lineEpoch: B }));
      // another run, and a record without line truth
      store.add(rec(1, 3, { lineEpoch: B, runId: 'run-2', reason: 'station_stopping' }));
      store.add(rec(2, null, { runId: 'run-2' }));
      await store.flush();

      const notSeenParts = (await store.query({ runId: RUN, limit: 100 })).filter((r) => r.reason === 'not_seen').map((r) => `${r.line_epoch}/${r.part_id}`);
      expect(notSeenParts.sort()).toEqual([`${B}/2`, `${EPOCH}/10`, `${EPOCH}/6`, `${EPOCH}/8`].sort());
      const zero = { dropped: 0, camera_error: 0, not_seen: 0, stale_epoch: 0, model_down: 0, inference_timeout: 0, station_stopping: 0, inspection_stopped: 0, unspecified: 0 };
      expect(await store.partAccounting(RUN)).toEqual({
        // epoch A: 1..11 (odd ones and B/1 inspected), epoch B: 1 and 2
        rows: 11 + 2, withoutPartId: 0, inspected: 6 + 1,
        notInspected: { ...zero, dropped: 1, inference_timeout: 1, not_seen: 4 },
        // epoch A: 1..10 reported (3, 6, 9 rejected; 10 late), 11 unknown; epoch B: 1 and 2 accepted
        gate: { accepted: 6 + 2, rejected: 3, timeout: 0, late: 1, unknown: 1 },
        duplicates: 0,
      });
      expect(await store.partAccounting()).toEqual({
        rows: 15, withoutPartId: 1, inspected: 8,
        notInspected: { ...zero, dropped: 1, inference_timeout: 1, not_seen: 4, station_stopping: 1 },
        gate: { accepted: 8, rejected: 3, timeout: 0, late: 1, unknown: 3 },
        duplicates: 0,
      });
      expect(await store.partAccounting('nobody')).toEqual({
        rows: 0, withoutPartId: 0, inspected: 0, notInspected: zero, gate: { accepted: 0, rejected: 0, timeout: 0, late: 0, unknown: 0 }, duplicates: 0,
      });
      expect(await store.lastPartId(EPOCH)).toBe(11);
      expect(await store.lastPartId(B)).toBe(3);
      expect(await store.lastPartId(12345)).toBe(0);
      // a gate row for a part beyond the last record moves lastPartId too (a part the station never saw)
      store.setGateOutcome(gate(40, 'accepted', ++fillSeq));
      expect(await store.lastPartId(EPOCH)).toBe(40);

      // the duplicates count is computed, not assumed: break the rule behind the store's back and it shows
      const rw = new Database(join(work, name));
      try {
        rw.pragma('busy_timeout = 5000');
        rw.exec('DROP INDEX results_line_part');
        const cols = INSERT_COLUMNS.join(', ');
        rw.prepare(`INSERT INTO results (${cols}) SELECT run_id, seq + 100000, ${INSERT_COLUMNS.slice(2).join(', ')}
          FROM results WHERE line_epoch = ? AND part_id IN (1, 2)`).run(EPOCH);
      } finally { rw.close(); }
      expect((await store.partAccounting(RUN)).duplicates).toBe(2);
      expect((await store.partAccounting('run-2')).duplicates).toBe(0);
    } finally { await store.close(); }
  });

  it('a replayed batch changes nothing: patches stay, outcomes are kept, no new rows', async () => {
    const store = await openStore('replay.sqlite', { maxBatch: 1000, testHooks: { dieAfterCommitOfBatch: 2 }, restartBackoffMs: { initial: 10, max: 50 } });
    try {
      // batch 1: facts for part seq 1 before its record (parked) and an outcome for part 2 (makes its row)
      store.update(1, RUN, { plcWriteMs: 2, plcStatus: 'acked', imagePath: 'images/run-1/pass/1.png' });
      store.setGateOutcome(gate(2, 'timeout', 900));
      await store.flush();
      // batch 2 commits, its acknowledgement is lost (the worker dies), and it is replayed
      store.add(rec(1, 1));
      store.setGateOutcome(gate(1, 'accepted', 901));
      store.add(rec(2, 2));
      store.setGateOutcome(gate(2, 'late', 902));
      await store.flush();
      expect(store.stats.restarts).toBe(1);
      // counts come with acknowledgements: batch 2's first commit was never acknowledged, only its replay counts
      expect(store.stats).toMatchObject({ inserted: 0, duplicates: 2, deferred: 1, outcomes: 1, outcomesKept: 2, quarantined: 0 });
      expect(await store.part(EPOCH, 1)).toMatchObject({ seq: 1, plc_write_ms: 2, plc_status: 'acked', image_path: 'images/run-1/pass/1.png', gate_outcome: 'accepted' });
      expect(await store.part(EPOCH, 2)).toMatchObject({ seq: 2, code: 0, reason: null, plc_status: 'pending', gate_outcome: 'late' });
      expect(await store.count()).toBe(2);
      // a second record for a part that has one already (not a replay) changes nothing either
      store.add({ ...rec(3, 1), verdict: 'reject', code: 1 });
      await store.flush();
      expect(await store.part(EPOCH, 1)).toMatchObject({ seq: 1, verdict: 'pass', code: 0 });
      expect(await store.count()).toBe(2);
      expect(store.stats.duplicates).toBe(3);
    } finally { await store.close(); }
  });

  it('a part id without its epoch, or an unknown outcome, is quarantined, not dropped or thrown', async () => {
    const name = 'poison.sqlite';
    const store = await openStore(name);
    try {
      store.add(rec(1, 5, { lineEpoch: null }));
      store.setGateOutcome({ ...gate(6, 'accepted', 2), outcome: 'maybe' as GateOutcome });
      store.add(rec(3, 7));
      await store.flush();
      expect(store.stats.quarantined).toBe(2);
      expect(await store.count()).toBe(1);
      expect(await store.part(EPOCH, 7)).toMatchObject({ seq: 3 });
    } finally { await store.close(); }
    const ro = openReadOnly(join(work, name));
    try {
      const q = ro.prepare('SELECT op_json, error FROM quarantine ORDER BY id').all() as Array<{ op_json: string; error: string }>;
      expect(q.map((r) => r.error)).toEqual(['a result with a partId needs its lineEpoch', 'unknown gate outcome "maybe"']);
      expect(JSON.parse(q[1]!.op_json)).toMatchObject({ k: 'gate' });
    } finally { ro.close(); }
  });
});

describe('schema v4 migration', () => {
  /** The results table's columns before v4, as the v3 store worker inserted them. */
  const V3_COLUMNS = ['run_id', 'seq', 'captured_at_ms', 'verdict', 'code', 'score', 'model_name', 'model_version', 'provider',
    'dispatch_ms', 'inference_ms', 'frame_to_verdict_ms', 'plc_write_ms', 'plc_status', 'source_ref', 'image_path', 'anomaly_map_path',
    'defect_class'];

  it('a results.sqlite written by the v3 schema opens, keeps its rows (new columns NULL) and takes parts after', async () => {
    const dbPath = join(work, 'v3.sqlite');
    const old = new Database(dbPath);
    old.pragma('journal_mode = WAL');
    for (const [i, sql] of MIGRATIONS.slice(0, 3).entries()) { old.exec(sql); old.pragma(`user_version = ${i + 1}`); }
    const ins = old.prepare(`INSERT INTO results (${V3_COLUMNS.join(', ')}) VALUES (${V3_COLUMNS.map(() => '?').join(', ')})`);
    ins.run('old', 1, 1_690_000_000_001, 'reject', 1, 0.9, 'padim', '1.0.0', 'cpu', 0.1, 4, 5, 0.7, 'acked', null, 'images/old/reject/1.png', null, 'scratch');
    ins.run('old', 2, 1_690_000_000_002, 'pass', 0, 0.1, 'padim', '1.0.0', 'cpu', 0.1, 4, 5, 0.7, 'acked', null, null, null, null);
    const before = old.prepare('SELECT * FROM results ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(old.pragma('user_version', { simple: true })).toBe(3);
    old.close();

    const store = await ResultStore.open({ dbPath, logger: log });
    try {
      store.add(rec(3, null, { runId: 'old' })); // a writer without line truth, as before
      store.add(rec(1, 1));
      store.setGateOutcome(gate(2, 'accepted', 500));
      expect(await store.count()).toBe(5);
      const acc = await store.partAccounting('old');
      expect([acc.rows, acc.withoutPartId, acc.inspected, acc.gate.unknown, acc.duplicates]).toEqual([3, 3, 3, 3, 0]);
    } finally { await store.close(); }

    const ro = openReadOnly(dbPath);
    try {
      expect(ro.pragma('user_version', { simple: true })).toBe(4);
      expect(MIGRATIONS).toHaveLength(4);
      const after = ro.prepare('SELECT * FROM results ORDER BY id').all() as ResultRow[];
      expect(after).toHaveLength(5);
      const nulls = { line_epoch: null, part_id: null, reason: null, gate_outcome: null, gate_outcome_at_ms: null };
      for (let i = 0; i < before.length; i++) expect(after[i]).toEqual({ ...before[i], ...nulls });
      expect(after[2]).toMatchObject({ run_id: 'old', seq: 3, ...nulls });
      expect(after[3]).toMatchObject({ run_id: RUN, seq: 1, line_epoch: EPOCH, part_id: 1, reason: null, gate_outcome: null });
      expect(after[4]).toMatchObject({ run_id: RUN, seq: 500, line_epoch: EPOCH, part_id: 2, reason: 'not_seen', gate_outcome: 'accepted' });
      const indexes = ro.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'results'").pluck().all();
      expect(indexes).toEqual(expect.arrayContaining(['results_line_part', 'results_gate_outcome']));
    } finally { ro.close(); }

    // opening the migrated file again changes nothing
    const again = await ResultStore.open({ dbPath, logger: log });
    try { expect(await again.count()).toBe(5); } finally { await again.close(); }
  });
});
