/**
 * The store worker: owns the SQLite results database (WAL) and applies
 * batches of operations posted by `ResultStore` on the main thread, one
 * transaction per batch, with prepared statements.
 *
 * Guarantees (see README.md):
 *  - A batch is acknowledged (`committed`) only after its transaction commits.
 *  - Inserts are idempotent on (run_id, seq): a replayed batch adds nothing.
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
import type { ResultRecord, Verdict } from '../core/types.js';

// ---------------------------------------------------------------- protocol --

/** Positional row, in INSERT_COLUMNS order (compact to structured-clone). */
export type RowTuple = [
  runId: string, seq: number, capturedAtMs: number, verdict: Verdict, code: number, score: number,
  modelName: string, modelVersion: string, provider: string,
  dispatchMs: number, inferenceMs: number, frameToVerdictMs: number, plcWriteMs: number | null,
  plcStatus: ResultRecord['plcStatus'], sourceRef: string | null, imagePath: string | null,
  anomalyMapPath: string | null,
];

/** mask bits: 1 plcWriteMs, 2 plcStatus, 4 imagePath, 8 anomalyMapPath (only set fields are written). */
export interface UpdateOp {
  k: 'upd'; runId: string; seq: number; mask: number;
  plcWriteMs: number | null; plcStatus: string | null; imagePath: string | null; anomalyMapPath: string | null;
}
export type StoreOp =
  | { k: 'run'; runId: string; startedAtMs: number; configJson: string }
  | { k: 'ins'; row: RowTuple }
  | UpdateOp;

export type QuerySpec =
  | { kind: 'count'; runId?: string }
  | { kind: 'rows'; runId?: string; verdict?: Verdict; limit: number; offset: number; order: 'asc' | 'desc' };

export type ToStoreWorker =
  | { type: 'batch'; id: number; ops: StoreOp[]; replay: boolean }
  | { type: 'query'; id: number; q: QuerySpec }
  | { type: 'close' };

export interface BatchCounts { inserted: number; duplicates: number; updated: number; deferred: number; quarantined: number }

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

/** Migrations as data: entry i brings user_version from i to i + 1. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     run_id TEXT PRIMARY KEY,
     started_at_ms INTEGER NOT NULL,
     config_json TEXT NOT NULL
   );
   CREATE TABLE results (
     id INTEGER PRIMARY KEY,
     seq INTEGER NOT NULL,
     captured_at_ms INTEGER NOT NULL,
     verdict TEXT NOT NULL,
     code INTEGER NOT NULL,
     score REAL,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     provider TEXT NOT NULL,
     dispatch_ms REAL,
     inference_ms REAL,
     frame_to_verdict_ms REAL,
     plc_write_ms REAL NULL,
     plc_status TEXT NOT NULL,
     source_ref TEXT NULL,
     image_path TEXT NULL,
     anomaly_map_path TEXT NULL,
     run_id TEXT NOT NULL
   );
   CREATE UNIQUE INDEX results_run_seq ON results (run_id, seq);
   CREATE INDEX results_captured_at ON results (captured_at_ms);
   CREATE INDEX results_verdict ON results (verdict);
   CREATE TABLE pending_updates (
     run_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     mask INTEGER NOT NULL,
     plc_write_ms REAL, plc_status TEXT, image_path TEXT, anomaly_map_path TEXT,
     PRIMARY KEY (run_id, seq)
   );
   CREATE TABLE quarantine (
     id INTEGER PRIMARY KEY,
     at_ms INTEGER NOT NULL,
     op_json TEXT NOT NULL,
     error TEXT NOT NULL
   );`,
];

export const INSERT_COLUMNS = [
  'run_id', 'seq', 'captured_at_ms', 'verdict', 'code', 'score', 'model_name', 'model_version', 'provider',
  'dispatch_ms', 'inference_ms', 'frame_to_verdict_ms', 'plc_write_ms', 'plc_status', 'source_ref',
  'image_path', 'anomaly_map_path',
] as const;

export function migrate(db: Database.Database): number {
  let version = db.pragma('user_version', { simple: true }) as number;
  for (; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return version;
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
  const insertResult = db.prepare(
    `INSERT INTO results (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT(run_id, seq) DO NOTHING`);
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
  let parked = countParked.get() as number;

  const apply = (op: StoreOp, c: BatchCounts): void => {
    if (op.k === 'ins') {
      if (insertResult.run(op.row).changes === 0) { c.duplicates++; return; }
      c.inserted++;
      if (parked > 0) {
        const p = takeParked.get(op.row[0], op.row[1]) as Omit<UpdateOp, 'k' | 'runId' | 'seq'> | undefined;
        if (p) {
          updateResult.run({ ...p, runId: op.row[0], seq: op.row[1] });
          dropParked.run(op.row[0], op.row[1]);
          parked--;
        }
      }
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
    const c: BatchCounts = { inserted: 0, duplicates: 0, updated: 0, deferred: 0, quarantined: 0 };
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
      try {
        counts = runBatch(msg.ops);
      } catch (err) {
        parked = countParked.get() as number; // the rollback may have undone parking
        throw err; // not the data's fault: die, main restarts us and replays in order
      }
      if (data.dieAfterCommitOfBatch === msg.id) process.exit(3);
      if (counts.duplicates > 0 && !msg.replay) {
        log('warn', 'results with an existing (run_id, seq) were ignored', { batch: msg.id, duplicates: counts.duplicates });
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
