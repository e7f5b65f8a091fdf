/**
 * The results database schema, as data: `MIGRATIONS[i]` takes `PRAGMA user_version` from i to
 * i + 1, each in its own transaction (store-worker.ts runs `migrate()` when it opens the file).
 * Migrations are append-only: a file written by any earlier version opens and is brought up to
 * date without losing rows. Kept apart from the worker so it can be imported anywhere (tests,
 * tools) without starting one.
 */
import type Database from 'better-sqlite3';


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
  // 2: shadow verdicts (model registry): one row per part a shadow model scored
  `CREATE TABLE shadow_results (
     run_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     score REAL,
     verdict TEXT NOT NULL,
     live_model_name TEXT NOT NULL,
     live_model_version TEXT NOT NULL,
     live_score REAL,
     live_verdict TEXT NOT NULL,
     agree INTEGER NOT NULL,
     inference_ms REAL,
     at_ms INTEGER NOT NULL,
     PRIMARY KEY (run_id, seq, model_name, model_version)
   );
   CREATE INDEX shadow_results_model ON shadow_results (model_name, model_version, agree);`,
  // 3: the verdict's defect class (the model's; a QA label's class lives in the review database).
  // ADD COLUMN with no default rewrites nothing: existing rows read NULL (unknown / before v3).
  `ALTER TABLE results ADD COLUMN defect_class TEXT NULL;
   CREATE INDEX results_defect_class ON results (defect_class) WHERE defect_class IS NOT NULL;`,
  // 4: line truth. The PLC numbers the parts (line_epoch: its numbering epoch, part_id: 1, 2, 3 … within it);
  // every part the photo-eye saw has exactly one row, inspected or not (reason: why not), and the row ends up
  // with the gate's outcome read back from the PLC (NULL: not read back yet). Old rows read NULL everywhere.
  // The UNIQUE index is the one-row-per-part rule; rows without a part id (before v4) are outside it.
  `ALTER TABLE results ADD COLUMN line_epoch INTEGER NULL;
   ALTER TABLE results ADD COLUMN part_id INTEGER NULL;
   ALTER TABLE results ADD COLUMN reason TEXT NULL;
   ALTER TABLE results ADD COLUMN gate_outcome TEXT NULL;
   ALTER TABLE results ADD COLUMN gate_outcome_at_ms INTEGER NULL;
   CREATE UNIQUE INDEX results_line_part ON results (line_epoch, part_id) WHERE part_id IS NOT NULL;
   CREATE INDEX results_gate_outcome ON results (gate_outcome);`,
];

export const INSERT_COLUMNS = [
  'run_id', 'seq', 'captured_at_ms', 'verdict', 'code', 'score', 'model_name', 'model_version', 'provider',
  'dispatch_ms', 'inference_ms', 'frame_to_verdict_ms', 'plc_write_ms', 'plc_status', 'source_ref',
  'image_path', 'anomaly_map_path', 'defect_class', 'line_epoch', 'part_id', 'reason',
] as const;

/** Columns an inspection record (`ResultStore.add`) sets on a row that a gate outcome created first. */
export const INSPECTION_COLUMNS = INSERT_COLUMNS.filter((c) => c !== 'line_epoch' && c !== 'part_id');

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

