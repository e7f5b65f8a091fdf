/**
 * The audit trail: who did what to which target, when, with the state before
 * and after (JSON). Rows are only ever inserted (the schema refuses UPDATE and
 * DELETE on `audit`).
 */
import type { Db } from './review-db.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
}

export interface AuditRow {
  id: number; at: string; atMs: number; actor: string; action: string; target: string;
  before: unknown; after: unknown;
}

export interface AuditFilter {
  from?: number; to?: number; actor?: string; action?: string; target?: string;
  limit: number; beforeId?: number;
}

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

export class AuditLog {
  private readonly insert;
  constructor(private readonly db: Db) {
    this.insert = db.prepare('INSERT INTO audit (at_ms, actor, action, target, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Append one entry; returns its id. Run inside the caller's transaction to tie it to the change. */
  record(e: AuditEntry): number {
    return Number(this.insert.run(Date.now(), e.actor, e.action, e.target, json(e.before), json(e.after)).lastInsertRowid);
  }

  /** Newest first; `action` matches a prefix (`label.` finds every label action). */
  list(f: AuditFilter): AuditRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.from !== undefined) { where.push('at_ms >= ?'); args.push(f.from); }
    if (f.to !== undefined) { where.push('at_ms < ?'); args.push(f.to); }
    if (f.actor !== undefined) { where.push('actor = ?'); args.push(f.actor); }
    if (f.action !== undefined) { where.push("action LIKE ? ESCAPE '\\'"); args.push(f.action.replace(/[\\%_]/g, (c) => '\\' + c) + '%'); }
    if (f.target !== undefined) { where.push('target = ?'); args.push(f.target); }
    if (f.beforeId !== undefined) { where.push('id < ?'); args.push(f.beforeId); }
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, f.limit) as Array<{ id: number; at_ms: number; actor: string; action: string; target: string; before_json: string | null; after_json: string | null }>;
    return rows.map((r) => ({
      id: r.id, atMs: r.at_ms, at: new Date(r.at_ms).toISOString(), actor: r.actor, action: r.action, target: r.target,
      before: r.before_json === null ? null : JSON.parse(r.before_json), after: r.after_json === null ? null : JSON.parse(r.after_json),
    }));
  }
}
