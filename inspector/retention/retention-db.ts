/**
 * Retention's own tables in the review database (IF NOT EXISTS, outside the
 * review schema's user_version migrations): one row per pass, and every part
 * whose image files a pass deleted, with the paths it had.
 */
import type { Db } from '../review/review-db.js';
import { ensureExportTables } from '../export/export-registry.js';

export const RETENTION_TABLES = `
  CREATE TABLE IF NOT EXISTS retention_runs (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    dry_run INTEGER NOT NULL,
    freed_files INTEGER NOT NULL,
    freed_bytes INTEGER NOT NULL,
    usage_before INTEGER NOT NULL,
    usage_after INTEGER NOT NULL,
    budget_bytes INTEGER NOT NULL,
    budget_met INTEGER NOT NULL,
    report_json TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS retention_deleted (
    retention_run_id INTEGER NOT NULL REFERENCES retention_runs(id),
    run_id TEXT,
    seq INTEGER,
    image_path TEXT NOT NULL,
    anomaly_map_path TEXT,
    bytes INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS retention_deleted_part ON retention_deleted (run_id, seq);
`;

export function ensureRetentionTables(db: Db): void {
  ensureExportTables(db);
  db.exec(RETENTION_TABLES);
}
