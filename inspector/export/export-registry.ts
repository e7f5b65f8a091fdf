/**
 * Exports recorded in the review database (its own tables, created with
 * IF NOT EXISTS next to the review schema, outside its user_version
 * migrations): what was exported, by whom, where, in which state, and which
 * parts each export holds. Retention never deletes the image of a part held
 * by a running or finished export.
 */
import { rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { openReviewDb, type Db } from '../review/review-db.js';
import type { ExportCounts, ExportFilter, ExportFormat } from './schema.js';

export const EXPORT_TABLES = `
  CREATE TABLE IF NOT EXISTS exports (
    id TEXT PRIMARY KEY,
    format TEXT NOT NULL,
    filter_json TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running','done','failed')),
    created_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    counts_json TEXT,
    manifest_sha256 TEXT,
    error TEXT
  );
  CREATE TABLE IF NOT EXISTS export_items (
    export_id TEXT NOT NULL REFERENCES exports(id),
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    image_path TEXT NOT NULL,
    PRIMARY KEY (export_id, run_id, seq)
  );
  CREATE INDEX IF NOT EXISTS export_items_part ON export_items (run_id, seq);
`;

export type ExportStatus = 'running' | 'done' | 'failed';

export interface ExportRecord {
  id: string; format: ExportFormat; filter: ExportFilter; outDir: string; actor: string; status: ExportStatus;
  createdAtMs: number; finishedAtMs: number | null; counts: ExportCounts | null; manifestSha256: string | null;
  error: string | null;
}

interface ExportRow {
  id: string; format: ExportFormat; filter_json: string; out_dir: string; actor: string; status: ExportStatus;
  created_at_ms: number; finished_at_ms: number | null; counts_json: string | null; manifest_sha256: string | null; error: string | null;
}

const toRecord = (r: ExportRow): ExportRecord => ({
  id: r.id, format: r.format, filter: JSON.parse(r.filter_json) as ExportFilter, outDir: r.out_dir, actor: r.actor,
  status: r.status, createdAtMs: r.created_at_ms, finishedAtMs: r.finished_at_ms,
  counts: r.counts_json ? JSON.parse(r.counts_json) as ExportCounts : null, manifestSha256: r.manifest_sha256, error: r.error,
});

export function ensureExportTables(db: Db): void {
  db.exec(EXPORT_TABLES);
}

export class ExportRegistry {
  constructor(private readonly db: Db) { ensureExportTables(db); }

  /** Record a starting export and the parts it holds (before any file is written). */
  start(e: { id: string; format: ExportFormat; filter: ExportFilter; outDir: string; actor: string;
    items: ReadonlyArray<{ runId: string; seq: number; imagePath: string }> }): void {
    const ins = this.db.prepare('INSERT INTO export_items (export_id, run_id, seq, image_path) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO exports (id, format, filter_json, out_dir, actor, status, created_at_ms)
        VALUES (?, ?, ?, ?, ?, 'running', ?)`).run(e.id, e.format, JSON.stringify(e.filter), e.outDir, e.actor, Date.now());
      for (const it of e.items) ins.run(e.id, it.runId, it.seq, it.imagePath);
    })();
  }

  finish(id: string, counts: ExportCounts, manifestSha256: string): void {
    this.db.prepare(`UPDATE exports SET status = 'done', finished_at_ms = ?, counts_json = ?, manifest_sha256 = ? WHERE id = ?`)
      .run(Date.now(), JSON.stringify(counts), manifestSha256, id);
  }

  /** A failed export holds nothing: its parts are released for retention. */
  fail(id: string, error: string): void {
    this.db.transaction(() => {
      this.db.prepare(`UPDATE exports SET status = 'failed', finished_at_ms = ?, error = ? WHERE id = ?`).run(Date.now(), error, id);
      this.db.prepare('DELETE FROM export_items WHERE export_id = ?').run(id);
    })();
  }

  get(id: string): ExportRecord | null {
    const r = this.db.prepare('SELECT * FROM exports WHERE id = ?').get(id) as ExportRow | undefined;
    return r ? toRecord(r) : null;
  }

  /** Newest first. */
  list(limit = 100): ExportRecord[] {
    return (this.db.prepare('SELECT * FROM exports ORDER BY created_at_ms DESC, id DESC LIMIT ?').all(limit) as ExportRow[]).map(toRecord);
  }

  /**
   * Exports left 'running' by a process that died: marked failed with `reason` (their parts are
   * released for retention) and their hidden `.<out>.partial-<id>` staging folders removed.
   * Called at station start, before the HTTP server can start new exports. Returns their ids.
   */
  failStale(reason: string): string[] {
    const rows = this.db.prepare(`SELECT id, out_dir FROM exports WHERE status = 'running'`).all() as Array<{ id: string; out_dir: string }>;
    for (const r of rows) {
      this.fail(r.id, reason);
      rmSync(stagingDirOf(r.out_dir, r.id), { recursive: true, force: true });
    }
    return rows.map((r) => r.id);
  }
}

/** Where an export is written before its folder appears by rename (run-export.ts). */
export function stagingDirOf(outDir: string, id: string): string {
  return join(dirname(outDir), `.${basename(outDir)}.partial-${id}`);
}

/** Open the review database, fail the exports a dead process left running, close it. */
export function failStaleExports(reviewDbPath: string, reason: string, log?: Pick<Logger, 'warn'>): string[] {
  const db = openReviewDb(reviewDbPath);
  try {
    const ids = new ExportRegistry(db).failStale(reason);
    if (ids.length > 0) log?.warn({ exports: ids, reason }, 'exports left running by a stopped process marked failed');
    return ids;
  } finally {
    db.close();
  }
}
