/**
 * Read queries that join the results database (written by the store worker)
 * with the review database: the review queue, one part, and the stats.
 *
 * They run on their own connection, opened READ-ONLY on the results database
 * with the review database ATTACHed as `rv` (attached files inherit the
 * read-only flag), so nothing here can write either file. WAL lets it read
 * while the store worker and the review writer commit.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import type { ResultRow } from '../results/result-store.js';
import { toLabel, type Label, type PartRef } from './labels.js';
import { ResultCode } from '../core/types.js';

const require = createRequire(import.meta.url);

export interface QueueFilter {
  from?: number; to?: number;
  verdict?: 'pass' | 'reject';
  /**
   * defect class: a part matches when its QA label's class OR the model's class of its
   * verdict (results.defect_class) is this one
   */
  defectClass?: string;
  /** model version, or name@version */
  model?: string;
  /** reviewed (or not) by `reviewer` */
  reviewed?: boolean;
  /** only the doubtful passes */
  doubtful?: boolean;
  limit: number;
  cursor?: string;
}

export interface QueueItem {
  runId: string; seq: number; capturedAt: string; capturedAtMs: number; verdict: 'pass' | 'reject'; code: number;
  score: number | null;
  /** the model that decided, and its defect class of the verdict (null: a pass, an error, or not known) */
  model: { name: string; version: string; defectClass: string | null }; frameToVerdictMs: number | null;
  hasImage: boolean; hasMap: boolean; doubtful: boolean; reviewed: boolean; label: Label | null;
}

export class BadCursor extends Error {}

const encodeCursor = (ms: number, id: number): string => Buffer.from(`${ms}:${id}`).toString('base64url');
function decodeCursor(c: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?):(\d+)$/.exec(Buffer.from(c, 'base64url').toString());
  if (!m) throw new BadCursor(`cursor ${JSON.stringify(c)} is not one this server gave out`);
  return [Number(m[1]), Number(m[2])];
}

type JoinedRow = ResultRow & {
  l_revision: number | null; l_verdict: Label['verdict'] | null; l_defect_class: string | null; l_regions_json: string | null;
  l_actor: string | null; l_at_ms: number | null; reviewed: number;
};

const LABEL_COLS = `l.revision AS l_revision, l.verdict AS l_verdict, l.defect_class AS l_defect_class,
  l.regions_json AS l_regions_json, l.actor AS l_actor, l.at_ms AS l_at_ms`;

export class ReviewQueries {
  private conn: BetterSqlite3.Database | null = null;

  constructor(private readonly resultsDbPath: string | undefined, private readonly reviewDbPath: string) {}

  /** The read-only connection, opened on first use; null while the results database does not exist. */
  db(): BetterSqlite3.Database | null {
    if (this.conn) return this.conn;
    if (!this.resultsDbPath || !existsSync(this.resultsDbPath) || this.reviewDbPath === ':memory:') return null;
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(this.resultsDbPath, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    db.prepare('ATTACH DATABASE ? AS rv').run(this.reviewDbPath);
    this.conn = db;
    return db;
  }

  close(): void { this.conn?.close(); this.conn = null; }

  /**
   * The review queue, newest first: rejects, plus passes whose score is within
   * `doubtMargin` below the threshold. Each item carries the latest label and
   * whether `reviewer` has reviewed it. Parts the station did not inspect (code
   * NOT_INSPECTED: dropped, camera error, never seen…) are left out unless they
   * have an image: there is nothing to review (the stats count them).
   */
  queue(db: BetterSqlite3.Database, f: QueueFilter, reviewer: string, threshold: number, doubtMargin: number): { items: QueueItem[]; nextCursor: string | null } {
    const where: string[] = [];
    const args: unknown[] = [reviewer];
    const doubtLow = threshold - doubtMargin;
    const doubtfulSql = `(r.verdict = 'pass' AND r.score IS NOT NULL AND r.score >= ${Number(doubtLow)})`;
    if (f.doubtful || f.verdict === 'pass') where.push(doubtfulSql);
    else if (f.verdict === 'reject') where.push(`r.verdict = 'reject'`);
    else where.push(`(r.verdict = 'reject' OR ${doubtfulSql})`);
    where.push(`NOT (r.code = ${Number(ResultCode.NOT_INSPECTED)} AND r.image_path IS NULL)`);
    if (f.from !== undefined) { where.push('r.captured_at_ms >= ?'); args.push(f.from); }
    if (f.to !== undefined) { where.push('r.captured_at_ms < ?'); args.push(f.to); }
    if (f.defectClass !== undefined) { where.push('(l.defect_class = ? OR r.defect_class = ?)'); args.push(f.defectClass, f.defectClass); }
    if (f.model !== undefined) {
      const at = f.model.lastIndexOf('@');
      if (at > 0) { where.push('r.model_name = ? AND r.model_version = ?'); args.push(f.model.slice(0, at), f.model.slice(at + 1)); }
      else { where.push('r.model_version = ?'); args.push(f.model); }
    }
    if (f.reviewed !== undefined) where.push(f.reviewed ? 'rw.reviewer IS NOT NULL' : 'rw.reviewer IS NULL');
    if (f.cursor !== undefined) {
      const [ms, id] = decodeCursor(f.cursor);
      where.push('(r.captured_at_ms < ? OR (r.captured_at_ms = ? AND r.id < ?))');
      args.push(ms, ms, id);
    }
    const sql = `SELECT r.*, ${LABEL_COLS}, (rw.reviewer IS NOT NULL) AS reviewed
      FROM results r
      LEFT JOIN rv.reviewed rw ON rw.run_id = r.run_id AND rw.seq = r.seq AND rw.reviewer = ?
      LEFT JOIN rv.labels l ON l.run_id = r.run_id AND l.seq = r.seq
      WHERE ${where.join(' AND ')}
      ORDER BY r.captured_at_ms DESC, r.id DESC LIMIT ?`;
    const rows = db.prepare(sql).all(...args, f.limit + 1) as JoinedRow[];
    const more = rows.length > f.limit;
    const page = more ? rows.slice(0, f.limit) : rows;
    const last = page[page.length - 1];
    return { items: page.map((r) => toItem(r, doubtLow)), nextCursor: more && last ? encodeCursor(last.captured_at_ms, last.id) : null };
  }

  /** One part with its label and the reviewer's state, or null. */
  part(db: BetterSqlite3.Database, p: PartRef, reviewer: string, threshold: number, doubtMargin: number): (QueueItem & { row: ResultRow }) | null {
    const r = db.prepare(`SELECT r.*, ${LABEL_COLS}, (rw.reviewer IS NOT NULL) AS reviewed
      FROM results r
      LEFT JOIN rv.reviewed rw ON rw.run_id = r.run_id AND rw.seq = r.seq AND rw.reviewer = ?
      LEFT JOIN rv.labels l ON l.run_id = r.run_id AND l.seq = r.seq
      WHERE r.run_id = ? AND r.seq = ?`).get(reviewer, p.runId, p.seq) as JoinedRow | undefined;
    return r ? { ...toItem(r, threshold - doubtMargin), row: stripJoin(r) } : null;
  }

  /** The stored row of a part (image paths), or null. */
  row(db: BetterSqlite3.Database, p: PartRef): ResultRow | null {
    return (db.prepare('SELECT * FROM results WHERE run_id = ? AND seq = ?').get(p.runId, p.seq) as ResultRow | undefined) ?? null;
  }
}

function toItem(r: JoinedRow, doubtLow: number): QueueItem {
  return {
    runId: r.run_id, seq: r.seq, capturedAtMs: r.captured_at_ms, capturedAt: new Date(r.captured_at_ms).toISOString(),
    verdict: r.verdict, code: r.code, score: r.score, model: { name: r.model_name, version: r.model_version, defectClass: r.defect_class ?? null },
    frameToVerdictMs: r.frame_to_verdict_ms, hasImage: r.image_path !== null, hasMap: r.anomaly_map_path !== null,
    doubtful: r.verdict === 'pass' && r.score !== null && r.score >= doubtLow,
    reviewed: r.reviewed === 1,
    label: r.l_revision === null ? null : toLabel({
      run_id: r.run_id, seq: r.seq, revision: r.l_revision, verdict: r.l_verdict!, defect_class: r.l_defect_class,
      regions_json: r.l_regions_json!, actor: r.l_actor!, at_ms: r.l_at_ms!,
    }),
  };
}

function stripJoin(r: JoinedRow): ResultRow {
  const { l_revision: _a, l_verdict: _b, l_defect_class: _c, l_regions_json: _d, l_actor: _e, l_at_ms: _f, reviewed: _g, ...row } = r;
  return row;
}
