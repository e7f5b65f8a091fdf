/**
 * QA labels of parts, with an append-only revision history.
 *
 * `set()` is optimistic: the caller sends the revision it last saw (0 for "no
 * label yet"); if someone saved meanwhile it is a conflict and nothing is
 * written. A change writes, in one transaction, the history row (revision+1),
 * the current label and an audit entry with before/after. The schema refuses a
 * current label without its history row, so nothing changes without a trace.
 * Saving the same content again is a no-op (the UI saves on every change).
 */
import type { Db } from './review-db.js';
import type { AuditLog } from './audit-log.js';

export type LabelVerdict = 'true_defect' | 'false_reject' | 'unsure';
export type Region =
  | { id: string; kind: 'box'; x: number; y: number; w: number; h: number }
  | { id: string; kind: 'polygon'; points: Array<[number, number]> };

export interface LabelInput { verdict: LabelVerdict; defectClass?: string | null; regions: Region[] }
export interface Label {
  runId: string; seq: number; revision: number; verdict: LabelVerdict; defectClass: string | null;
  regions: Region[]; by: string; at: string;
}
export interface PartRef { runId: string; seq: number }

interface LabelRow { run_id: string; seq: number; revision: number; verdict: LabelVerdict; defect_class: string | null; regions_json: string; actor: string; at_ms: number }

export const toLabel = (r: LabelRow): Label => ({
  runId: r.run_id, seq: r.seq, revision: r.revision, verdict: r.verdict, defectClass: r.defect_class,
  regions: JSON.parse(r.regions_json) as Region[], by: r.actor, at: new Date(r.at_ms).toISOString(),
});

export class LabelConflict extends Error {
  constructor(readonly current: Label | null, readonly sent: number) {
    super(`label changed meanwhile: sent revision ${sent}, current ${current?.revision ?? 0}`);
  }
}

export const partTarget = (p: PartRef): string => `part:${p.runId}/${p.seq}`;

const sameContent = (a: Label, b: LabelInput): boolean =>
  a.verdict === b.verdict && a.defectClass === (b.defectClass ?? null) && JSON.stringify(a.regions) === JSON.stringify(b.regions);

export class Labels {
  private readonly getStmt;
  private readonly historyStmt;
  private readonly insRevision;
  private readonly upsertLabel;
  private readonly markStmt;
  private readonly unmarkStmt;

  constructor(private readonly db: Db, private readonly audit: AuditLog) {
    this.getStmt = db.prepare('SELECT * FROM labels WHERE run_id = ? AND seq = ?');
    this.historyStmt = db.prepare('SELECT * FROM label_revisions WHERE run_id = ? AND seq = ? ORDER BY revision');
    this.insRevision = db.prepare(`INSERT INTO label_revisions (run_id, seq, revision, verdict, defect_class, regions_json, actor, at_ms)
      VALUES (@run_id, @seq, @revision, @verdict, @defect_class, @regions_json, @actor, @at_ms)`);
    this.upsertLabel = db.prepare(`INSERT INTO labels (run_id, seq, revision, verdict, defect_class, regions_json, actor, at_ms)
      VALUES (@run_id, @seq, @revision, @verdict, @defect_class, @regions_json, @actor, @at_ms)
      ON CONFLICT (run_id, seq) DO UPDATE SET revision = excluded.revision, verdict = excluded.verdict,
        defect_class = excluded.defect_class, regions_json = excluded.regions_json, actor = excluded.actor, at_ms = excluded.at_ms`);
    this.markStmt = db.prepare('INSERT INTO reviewed (run_id, seq, reviewer, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING');
    this.unmarkStmt = db.prepare('DELETE FROM reviewed WHERE run_id = ? AND seq = ? AND reviewer = ?');
  }

  get(p: PartRef): Label | null {
    const r = this.getStmt.get(p.runId, p.seq) as LabelRow | undefined;
    return r ? toLabel(r) : null;
  }

  /** Every revision, oldest first. */
  history(p: PartRef): Label[] {
    return (this.historyStmt.all(p.runId, p.seq) as LabelRow[]).map(toLabel);
  }

  /** Save a label if `expectedRevision` is still current; returns the label now stored. Throws LabelConflict. */
  set(p: PartRef, input: LabelInput, expectedRevision: number, actor: string, action = 'label.set'): { label: Label; changed: boolean } {
    return this.db.transaction(() => {
      const before = this.get(p);
      const current = before?.revision ?? 0;
      if (current !== expectedRevision) throw new LabelConflict(before, expectedRevision);
      if (before && sameContent(before, input)) { this.mark(p, actor); return { label: before, changed: false }; }
      const row: LabelRow = {
        run_id: p.runId, seq: p.seq, revision: current + 1, verdict: input.verdict, defect_class: input.defectClass ?? null,
        regions_json: JSON.stringify(input.regions), actor, at_ms: Date.now(),
      };
      this.insRevision.run(row);
      this.upsertLabel.run(row);
      const label = toLabel(row);
      this.audit.record({ actor, action, target: partTarget(p), before: before ? strip(before) : null, after: strip(label) });
      this.mark(p, actor); // labelling a part reviews it
      return { label, changed: true };
    })();
  }

  /** Set the verdict of many parts at once (keeping class and regions), each as a new revision. */
  setVerdictBulk(items: PartRef[], verdict: LabelVerdict, actor: string): Label[] {
    return this.db.transaction(() => items.map((p) => {
      const cur = this.get(p);
      return this.set(p, { verdict, defectClass: cur?.defectClass ?? null, regions: cur?.regions ?? [] }, cur?.revision ?? 0, actor, 'label.bulk').label;
    }))();
  }

  /** Per-reviewer reviewed state; one audit entry per call. */
  setReviewed(items: PartRef[], reviewer: string, reviewed: boolean): number {
    return this.db.transaction(() => {
      let changed = 0;
      const now = Date.now();
      for (const p of items) {
        changed += (reviewed ? this.markStmt.run(p.runId, p.seq, reviewer, now) : this.unmarkStmt.run(p.runId, p.seq, reviewer)).changes;
      }
      this.audit.record({ actor: reviewer, action: reviewed ? 'review.mark' : 'review.unmark', target: `reviewer:${reviewer}`,
        before: null, after: { reviewed, items, changed } });
      return changed;
    })();
  }

  isReviewed(p: PartRef, reviewer: string): boolean {
    return this.db.prepare('SELECT 1 FROM reviewed WHERE run_id = ? AND seq = ? AND reviewer = ?').get(p.runId, p.seq, reviewer) !== undefined;
  }

  private mark(p: PartRef, reviewer: string): void {
    this.markStmt.run(p.runId, p.seq, reviewer, Date.now());
  }
}

/** The audit copy of a label: its content and revision. */
function strip(l: Label): Omit<Label, 'runId' | 'seq'> {
  const { runId: _r, seq: _s, ...rest } = l;
  return rest;
}
