/**
 * The store worker: owns the SQLite results database (WAL) and applies
 * batches of operations posted by `ResultStore` on the main thread, one
 * transaction per batch, with prepared statements.
 *
 * Guarantees (see README.md):
 *  - A batch is acknowledged (`committed`) only after its transaction commits.
 *  - Inserts are idempotent on (run_id, seq), and on (line_epoch, part_id) for a record with a part id:
 *    a replayed batch adds nothing and changes nothing.
 *  - One row per PLC-numbered part: a record and the part's gate outcome meet on (line_epoch, part_id), in
 *    either order (the outcome makes a 'not_seen' row when it comes first; the record then takes it over).
 *  - An update whose row does not exist yet is parked in `pending_updates`
 *    (in the same transaction) and applied when the row is inserted.
 *  - An operation SQLite rejects for its content (constraint, bad binding) is
 *    quarantined as JSON with the error, never thrown away, and never blocks
 *    the ones after it. Any other error (disk full, I/O) escapes: the worker
 *    dies, main restarts it and replays every unacknowledged batch in order.
 *
 * Messages are handled one at a time (better-sqlite3 is synchronous), so a
 * query sees every batch posted before it.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import type { GateOutcome, PartReason, ResultRecord, Verdict } from '../core/types.js';
import { INSERT_COLUMNS, INSPECTION_COLUMNS, migrate } from './results-schema.js';

// ---------------------------------------------------------------- protocol --

/** Positional row, in INSERT_COLUMNS order (compact to structured-clone). */
export type RowTuple = [
  runId: string, seq: number, capturedAtMs: number, verdict: Verdict, code: number, score: number,
  modelName: string, modelVersion: string, provider: string,
  dispatchMs: number, inferenceMs: number, frameToVerdictMs: number, plcWriteMs: number | null,
  plcStatus: ResultRecord['plcStatus'], sourceRef: string | null, imagePath: string | null,
  anomalyMapPath: string | null, defectClass: string | null,
  lineEpoch: number | null, partId: number | null, reason: PartReason | null,
];

/**
 * The gate's outcome of a part, read back from the PLC (`ResultStore.setGateOutcome`), in this order;
 * the fill (runId, seq, capturedAtMs) is used only when the part has no row yet (a part the station never saw).
 */
export type GateTuple = [
  fillRunId: string, fillSeq: number, fillCapturedAtMs: number,
  lineEpoch: number, partId: number, outcome: GateOutcome, atMs: number,
];
const GATE_OUTCOMES: ReadonlySet<string> = new Set<GateOutcome>(['accepted', 'rejected', 'timeout', 'late']);

/** mask bits: 1 plcWriteMs, 2 plcStatus, 4 imagePath, 8 anomalyMapPath (only set fields are written). */
export interface UpdateOp {
  k: 'upd'; runId: string; seq: number; mask: number;
  plcWriteMs: number | null; plcStatus: string | null; imagePath: string | null; anomalyMapPath: string | null;
}
/** A shadow model's verdict on a part, beside the live one (registry/shadow-tap.ts), in SHADOW_COLUMNS order. */
export type ShadowTuple = [
  runId: string, seq: number, modelName: string, modelVersion: string, score: number, verdict: Verdict,
  liveModelName: string, liveModelVersion: string, liveScore: number, liveVerdict: Verdict, agree: 0 | 1,
  inferenceMs: number, atMs: number,
];
export const SHADOW_COLUMNS = [
  'run_id', 'seq', 'model_name', 'model_version', 'score', 'verdict', 'live_model_name', 'live_model_version',
  'live_score', 'live_verdict', 'agree', 'inference_ms', 'at_ms',
] as const;

export type StoreOp =
  | { k: 'run'; runId: string; startedAtMs: number; configJson: string }
  | { k: 'ins'; row: RowTuple }
  | { k: 'shd'; row: ShadowTuple }
  | { k: 'gate'; row: GateTuple }
  | UpdateOp;

export type QuerySpec =
  | { kind: 'count'; runId?: string }
  | { kind: 'rows'; runId?: string; verdict?: Verdict; limit: number; offset: number; order: 'asc' | 'desc' }
  | { kind: 'shadowReport'; modelName: string; modelVersion: string; runId?: string; limit: number }
  | { kind: 'partAccounting'; runId?: string }
  | { kind: 'lastPartId'; lineEpoch: number }
  | { kind: 'part'; lineEpoch: number; partId: number };

/**
 * Answer of a 'partAccounting' query (all runs, or one): the one-row-per-part books.
 * `inspected + sum(notInspected) === rows`; `gate` sums to `rows` too.
 */
export interface PartAccounting {
  /** rows (parts) stored */
  rows: number;
  /** of them, rows without a part id (written before line truth, or by a writer without it) */
  withoutPartId: number;
  /** rows with a model verdict (no reason) */
  inspected: number;
  /** rows without one, by reason ('unspecified': code NOT_INSPECTED with no reason) */
  notInspected: Record<PartReason | 'unspecified', number>;
  /** the gate's outcomes read back from the PLC; unknown: none read back (yet) */
  gate: Record<GateOutcome | 'unknown', number>;
  /** (line_epoch, part_id) pairs with more than one row: 0 unless the one-row-per-part rule is broken */
  duplicates: number;
}

/** Answer of a 'shadowReport' query: agreement of a shadow model with the live verdicts. */
export interface ShadowReportRows {
  compared: number; agree: number; disagree: number;
  /** live pass / shadow reject, and live reject / shadow pass */
  shadowRejectsLivePasses: number; shadowPassesLiveRejects: number;
  disagreements: Array<{
    run_id: string; seq: number; score: number | null; verdict: Verdict; live_model_version: string;
    live_score: number | null; live_verdict: Verdict; image_path: string | null; source_ref: string | null;
  }>;
}

export type ToStoreWorker =
  | { type: 'batch'; id: number; ops: StoreOp[]; replay: boolean }
  | { type: 'query'; id: number; q: QuerySpec }
  | { type: 'close' };

export interface BatchCounts {
  inserted: number; duplicates: number; updated: number; deferred: number; quarantined: number;
  /** gate outcomes that filled a row or made one (a part the station never saw) */
  outcomes: number;
  /** gate outcomes that changed nothing: the part's outcome was decided already (or a replay) */
  outcomesKept: number;
}
const zeroCounts = (): BatchCounts => ({ inserted: 0, duplicates: 0, updated: 0, deferred: 0, quarantined: 0, outcomes: 0, outcomesKept: 0 });

export type FromStoreWorker =
  | { type: 'ready'; userVersion: number; journalMode: string }
  | ({ type: 'committed'; id: number; ms: number } & BatchCounts)
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> }
  | { type: 'closed' };

export interface StoreWorkerData {
  dbPath: string;
  /** Test hook: exit right after committing this batch id, before acknowledging it. */
  dieAfterCommitOfBatch?: number;
}

// ---------------------------------------------------------------- schema --

// The schema (migrations as data, `migrate()`) lives in results-schema.ts: importable without starting a worker.

/** Agreement of one shadow model with the live verdicts (all runs, or one). */
function shadowReport(db: Database.Database, q: Extract<QuerySpec, { kind: 'shadowReport' }>): ShadowReportRows {
  const where = `s.model_name = @modelName AND s.model_version = @modelVersion${q.runId !== undefined ? ' AND s.run_id = @runId' : ''}`;
  const p = { modelName: q.modelName, modelVersion: q.modelVersion, runId: q.runId, limit: q.limit };
  const c = db.prepare(`SELECT count(*) AS compared, coalesce(sum(agree), 0) AS agree,
      coalesce(sum(CASE WHEN agree = 0 AND live_verdict = 'pass' THEN 1 ELSE 0 END), 0) AS shadowRejectsLivePasses,
      coalesce(sum(CASE WHEN agree = 0 AND live_verdict = 'reject' THEN 1 ELSE 0 END), 0) AS shadowPassesLiveRejects
    FROM shadow_results s WHERE ${where}`).get(p) as Omit<ShadowReportRows, 'disagree' | 'disagreements'>;
  const disagreements = db.prepare(`SELECT s.run_id, s.seq, s.score, s.verdict, s.live_model_version, s.live_score, s.live_verdict,
      r.image_path, r.source_ref
    FROM shadow_results s LEFT JOIN results r ON r.run_id = s.run_id AND r.seq = s.seq
    WHERE ${where} AND s.agree = 0 ORDER BY s.run_id, s.seq LIMIT @limit`).all(p) as ShadowReportRows['disagreements'];
  return { ...c, disagree: c.compared - c.agree, disagreements };
}

const PART_REASONS: readonly PartReason[] = ['dropped', 'camera_error', 'not_seen', 'stale_epoch', 'model_down', 'inference_timeout', 'station_stopping', 'inspection_stopped'];

/** The one-row-per-part books (all runs, or one). */
function partAccounting(db: Database.Database, runId: string | undefined): PartAccounting {
  const inRun = runId === undefined ? '' : 'WHERE run_id = @runId';
  const p = { runId };
  const totals = db.prepare(`SELECT count(*) AS rows,
      coalesce(sum(part_id IS NULL), 0) AS withoutPartId,
      coalesce(sum(reason IS NULL AND code <> 6), 0) AS inspected
    FROM results ${inRun}`).get(p) as { rows: number; withoutPartId: number; inspected: number };
  const notInspected = Object.fromEntries([...PART_REASONS, 'unspecified'].map((r) => [r, 0])) as PartAccounting['notInspected'];
  const byReason = db.prepare(`SELECT coalesce(reason, 'unspecified') AS reason, count(*) AS n FROM results
    ${inRun ? `${inRun} AND` : 'WHERE'} (reason IS NOT NULL OR code = 6) GROUP BY 1`).all(p) as Array<{ reason: string; n: number }>;
  for (const r of byReason) (notInspected as Record<string, number>)[r.reason] = r.n; // a reason this code does not know is kept as is
  const gate: PartAccounting['gate'] = { accepted: 0, rejected: 0, timeout: 0, late: 0, unknown: 0 };
  const byOutcome = db.prepare(`SELECT coalesce(gate_outcome, 'unknown') AS outcome, count(*) AS n FROM results ${inRun} GROUP BY 1`)
    .all(p) as Array<{ outcome: string; n: number }>;
  for (const o of byOutcome) (gate as Record<string, number>)[o.outcome] = o.n;
  // the pairs of this run (or all) that have more than one row anywhere
  const duplicates = db.prepare(`SELECT count(*) FROM (SELECT 1 FROM results
      WHERE part_id IS NOT NULL ${runId === undefined ? '' : 'AND (line_epoch, part_id) IN (SELECT line_epoch, part_id FROM results WHERE run_id = @runId)'}
      GROUP BY line_epoch, part_id HAVING count(*) > 1)`).pluck().get(p) as number;
  return { ...totals, notInspected, gate, duplicates };
}

// ---------------------------------------------------------------- worker --

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('store-worker.ts must run as a worker thread');
  const data = workerData as StoreWorkerData;
  const post = (m: FromStoreWorker): void => port.postMessage(m);
  const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void =>
    post(extra ? { type: 'log', level, msg, data: extra } : { type: 'log', level, msg });

  const db = new Database(data.dbPath);
  const journalMode = String(db.pragma('journal_mode = WAL', { simple: true }));
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  const userVersion = migrate(db);

  const insertRun = db.prepare(
    'INSERT INTO runs (run_id, started_at_ms, config_json) VALUES (?, ?, ?) ON CONFLICT(run_id) DO NOTHING');
  const insertValues = `INSERT INTO results (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`;
  const insertResult = db.prepare(`${insertValues} ON CONFLICT(run_id, seq) DO NOTHING`);
  // A record of a PLC-numbered part: one row per (line_epoch, part_id). A row made first by the part's gate
  // outcome (plc_status 'none': the station never had the part) takes the record's inspection fields, its
  // (run_id, seq) included, and keeps its outcome. A row that came from a record already is left alone: a
  // replay (or a second record for the part, a caller bug) inserts nothing, so a replay never undoes patches.
  const upsertPart = db.prepare(`${insertValues}
     ON CONFLICT(line_epoch, part_id) WHERE part_id IS NOT NULL DO UPDATE SET
       ${INSPECTION_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}
       WHERE results.plc_status = 'none'
     ON CONFLICT(run_id, seq) DO NOTHING`);
  // The gate's outcome: fills the part's row, or makes one for a part the station never saw (not_seen). First
  // decision wins, except that 'late' replaces 'timeout' (the station's result reached the PLC after the window).
  // The fill's (run_id, seq) only matter when a row is made: the (line_epoch, part_id) conflict is checked first.
  const upsertGate = db.prepare(
    `INSERT INTO results (run_id, seq, captured_at_ms, verdict, code, score, model_name, model_version, provider,
       dispatch_ms, inference_ms, frame_to_verdict_ms, plc_write_ms, plc_status, source_ref, image_path, anomaly_map_path,
       defect_class, line_epoch, part_id, reason, gate_outcome, gate_outcome_at_ms)
     VALUES (?, ?, ?, 'reject', 6, NULL, '', '', '', NULL, NULL, NULL, NULL, 'none', NULL, NULL, NULL,
       NULL, ?, ?, 'not_seen', ?, ?)
     ON CONFLICT(line_epoch, part_id) WHERE part_id IS NOT NULL DO UPDATE SET
       gate_outcome = excluded.gate_outcome, gate_outcome_at_ms = excluded.gate_outcome_at_ms
       WHERE results.gate_outcome IS NULL OR (results.gate_outcome = 'timeout' AND excluded.gate_outcome = 'late')`);
  const outcomeOf = db.prepare('SELECT gate_outcome FROM results WHERE line_epoch = ? AND part_id = ?').pluck();
  const patchSet = `
    plc_write_ms     = CASE WHEN @mask & 1 THEN @plcWriteMs ELSE plc_write_ms END,
    plc_status       = CASE WHEN @mask & 2 THEN @plcStatus ELSE plc_status END,
    image_path       = CASE WHEN @mask & 4 THEN @imagePath ELSE image_path END,
    anomaly_map_path = CASE WHEN @mask & 8 THEN @anomalyMapPath ELSE anomaly_map_path END`;
  const updateResult = db.prepare(`UPDATE results SET ${patchSet} WHERE run_id = @runId AND seq = @seq`);
  const parkUpdate = db.prepare(
    `INSERT INTO pending_updates (run_id, seq, mask, plc_write_ms, plc_status, image_path, anomaly_map_path)
     VALUES (@runId, @seq, @mask, @plcWriteMs, @plcStatus, @imagePath, @anomalyMapPath)
     ON CONFLICT(run_id, seq) DO UPDATE SET
       plc_write_ms     = CASE WHEN excluded.mask & 1 THEN excluded.plc_write_ms ELSE plc_write_ms END,
       plc_status       = CASE WHEN excluded.mask & 2 THEN excluded.plc_status ELSE plc_status END,
       image_path       = CASE WHEN excluded.mask & 4 THEN excluded.image_path ELSE image_path END,
       anomaly_map_path = CASE WHEN excluded.mask & 8 THEN excluded.anomaly_map_path ELSE anomaly_map_path END,
       mask = mask | excluded.mask`);
  const takeParked = db.prepare(
    `SELECT mask, plc_write_ms AS plcWriteMs, plc_status AS plcStatus, image_path AS imagePath,
            anomaly_map_path AS anomalyMapPath FROM pending_updates WHERE run_id = ? AND seq = ?`);
  const dropParked = db.prepare('DELETE FROM pending_updates WHERE run_id = ? AND seq = ?');
  const countParked = db.prepare('SELECT count(*) AS n FROM pending_updates').pluck();
  const quarantine = db.prepare('INSERT INTO quarantine (at_ms, op_json, error) VALUES (?, ?, ?)');
  const insertShadow = db.prepare(
    `INSERT INTO shadow_results (${SHADOW_COLUMNS.join(', ')}) VALUES (${SHADOW_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT DO NOTHING`);
  let parked = countParked.get() as number;
  let replaying = false;

  const apply = (op: StoreOp, c: BatchCounts): void => {
    if (op.k === 'ins') {
      const partId = op.row[19];
      if (partId != null && op.row[18] == null) throw new TypeError('a result with a partId needs its lineEpoch');
      if ((partId == null ? insertResult : upsertPart).run(op.row).changes === 0) { c.duplicates++; return; }
      c.inserted++;
      if (parked > 0) {
        const p = takeParked.get(op.row[0], op.row[1]) as Omit<UpdateOp, 'k' | 'runId' | 'seq'> | undefined;
        if (p) {
          updateResult.run({ ...p, runId: op.row[0], seq: op.row[1] });
          dropParked.run(op.row[0], op.row[1]);
          parked--;
        }
      }
    } else if (op.k === 'gate') {
      const [, , , lineEpoch, partId, outcome] = op.row;
      if (!GATE_OUTCOMES.has(outcome)) throw new TypeError(`unknown gate outcome ${JSON.stringify(outcome)}`);
      if (upsertGate.run(op.row).changes > 0) { c.outcomes++; return; }
      c.outcomesKept++;
      const kept = outcomeOf.get(lineEpoch, partId) as GateOutcome | null;
      if (!replaying && kept !== outcome && !(kept === 'late' && outcome === 'timeout')) {
        log('warn', 'a gate outcome was ignored: the part has one already (first decision wins, except timeout → late)',
          { lineEpoch, partId, kept, ignored: outcome });
      }
    } else if (op.k === 'shd') {
      insertShadow.run(op.row); // not counted as results; a replayed one adds nothing
    } else if (op.k === 'upd') {
      const { k: _k, ...params } = op;
      if (updateResult.run(params).changes > 0) { c.updated++; return; }
      parkUpdate.run(params);
      parked = countParked.get() as number;
      c.deferred++;
    } else {
      insertRun.run(op.runId, op.startedAtMs, op.configJson);
    }
  };
  const applyOne = db.transaction(apply); // nested inside runBatch: a SAVEPOINT per op
  const isPoison = (err: unknown): boolean => {
    if (err instanceof TypeError || err instanceof RangeError) return true; // bad binding
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH');
  };
  const runBatch = db.transaction((ops: StoreOp[]): BatchCounts => {
    const c = zeroCounts();
    for (const op of ops) {
      try {
        applyOne(op, c);
      } catch (err) {
        if (!isPoison(err)) throw err;
        const message = err instanceof Error ? err.message : String(err);
        quarantine.run(Date.now(), JSON.stringify(op), message);
        c.quarantined++;
        log('error', 'result operation rejected by SQLite; quarantined', { op, error: message });
      }
    }
    return c;
  });

  const query = (q: QuerySpec): unknown => {
    if (q.kind === 'shadowReport') return shadowReport(db, q);
    if (q.kind === 'partAccounting') return partAccounting(db, q.runId);
    if (q.kind === 'lastPartId') {
      return db.prepare('SELECT coalesce(max(part_id), 0) FROM results WHERE line_epoch = ? AND part_id IS NOT NULL').pluck().get(q.lineEpoch);
    }
    if (q.kind === 'part') {
      return db.prepare('SELECT * FROM results WHERE line_epoch = ? AND part_id = ?').get(q.lineEpoch, q.partId) ?? null;
    }
    if (q.kind === 'count') {
      const sql = q.runId === undefined ? 'SELECT count(*) FROM results' : 'SELECT count(*) FROM results WHERE run_id = ?';
      const stmt = db.prepare(sql).pluck();
      return q.runId === undefined ? stmt.get() : stmt.get(q.runId);
    }
    const where: string[] = [];
    if (q.runId !== undefined) where.push('run_id = @runId');
    if (q.verdict !== undefined) where.push('verdict = @verdict');
    const sql = `SELECT * FROM results ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY id ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT @limit OFFSET @offset`;
    return db.prepare(sql).all({ runId: q.runId, verdict: q.verdict, limit: q.limit, offset: q.offset });
  };

  port.on('message', (msg: ToStoreWorker) => {
    if (msg.type === 'batch') {
      const t0 = performance.now();
      let counts: BatchCounts;
      replaying = msg.replay;
      try {
        counts = runBatch(msg.ops);
      } catch (err) {
        parked = countParked.get() as number; // the rollback may have undone parking
        throw err; // not the data's fault: die, main restarts us and replays in order
      }
      if (data.dieAfterCommitOfBatch === msg.id) process.exit(3);
      if (counts.duplicates > 0 && !msg.replay) {
        log('warn', 'results with an existing (run_id, seq) or (line_epoch, part_id) were ignored', { batch: msg.id, duplicates: counts.duplicates });
      }
      post({ type: 'committed', id: msg.id, ms: performance.now() - t0, ...counts });
    } else if (msg.type === 'query') {
      try {
        post({ type: 'result', id: msg.id, ok: true, value: query(msg.q) });
      } catch (err) {
        post({ type: 'result', id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    } else {
      db.close();
      post({ type: 'closed' });
      port.close();
    }
  });
  post({ type: 'ready', userVersion, journalMode });
}

main();
