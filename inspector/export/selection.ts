/**
 * Which parts an export contains, in a fixed order (runId, seq).
 *
 * Reads the results database read-only with the review database ATTACHed
 * (read-only too: a read-only connection attaches read-only), joins each
 * result to its current label, applies the filter in SQL and maps labels to
 * dataset roles: 'false_reject' → good, 'true_defect' → defect/<class>,
 * 'unsure' → excluded and counted. With `labelledOnly: false`, unlabelled
 * passes count as good and unlabelled rejects are skipped (and counted).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { Value } from '@sinclair/typebox/value';
import { openReadOnly } from '../results/result-store.js';
import { openReviewDb } from '../review/review-db.js';
import { ExportBadFilterError } from './errors.js';
import { ExportFilter, Regions, type LabelVerdict, type Region } from './schema.js';

export interface ExportItem {
  runId: string;
  seq: number;
  capturedAtMs: number;
  modelVerdict: 'pass' | 'reject';
  modelName: string;
  modelVersion: string;
  /** absolute path of the station's saved image */
  sourcePath: string;
  /** the image path as the result row holds it (relative to the images root) */
  imagePath: string;
  /** file name inside the export (deterministic from runId and seq) */
  name: string;
  role: 'good' | 'defect';
  defectClass: string | null;
  regions: Region[];
  label: LabelVerdict | null;
  labelRevision: number | null;
}

export interface Selection {
  items: ExportItem[];
  excludedUnsure: number;
  skippedUnlabelledRejects: number;
  missingImages: number;
}

export interface SelectOptions {
  resultsDbPath: string;
  reviewDbPath: string;
  /** the station's images root: result rows hold paths relative to it */
  imagesDir: string;
  filter: ExportFilter;
}

interface Row {
  run_id: string; seq: number; captured_at_ms: number; verdict: 'pass' | 'reject'; model_name: string;
  model_version: string; image_path: string; label: LabelVerdict | null; defect_class: string | null;
  regions_json: string | null; revision: number | null;
}

const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';

/** `<runId>_<seq, 8 digits>.<ext>`: stable, sortable, unique per part. */
export function exportName(runId: string, seq: number, sourcePath: string): string {
  const ext = /\.([A-Za-z0-9]{1,5})$/.exec(sourcePath)?.[1]?.toLowerCase() ?? 'png';
  return `${safe(runId)}_${String(seq).padStart(8, '0')}.${ext}`;
}

/** Validate a filter (HTTP body or CLI flags); throws a coded 400. */
export function checkFilter(filter: unknown): ExportFilter {
  if (!Value.Check(ExportFilter, filter)) {
    const e = [...Value.Errors(ExportFilter, filter)][0];
    throw new ExportBadFilterError(`${e?.path || '/'}: ${e?.message ?? 'invalid'}`);
  }
  if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) {
    throw new ExportBadFilterError(`from (${filter.from}) must be before to (${filter.to})`);
  }
  return filter;
}

/** The filter with defaults filled in and keys in a fixed order (written into the manifest). */
export function normaliseFilter(f: ExportFilter): ExportFilter {
  const out: ExportFilter = {};
  if (f.from !== undefined) out.from = f.from;
  if (f.to !== undefined) out.to = f.to;
  if (f.verdict !== undefined) out.verdict = f.verdict;
  if (f.label !== undefined) out.label = f.label;
  if (f.classes !== undefined) out.classes = [...new Set(f.classes)].sort();
  if (f.modelName !== undefined) out.modelName = f.modelName;
  if (f.modelVersion !== undefined) out.modelVersion = f.modelVersion;
  if (f.runId !== undefined) out.runId = f.runId;
  out.labelledOnly = f.labelledOnly ?? true;
  return out;
}

function parseRegions(json: string | null, where: string): Region[] {
  if (!json) return [];
  let v: unknown;
  try { v = JSON.parse(json); } catch { throw new Error(`label of ${where}: regions are not JSON`); }
  if (!Value.Check(Regions, v)) throw new Error(`label of ${where}: regions do not match the region schema`);
  return v;
}

/** Run the selection. Deterministic: the same databases and filter give the same list. */
export function selectForExport(opts: SelectOptions): Selection {
  const filter = normaliseFilter(checkFilter(opts.filter));
  // make sure the review db exists and is migrated (a fresh station has no labels yet)
  openReviewDb(opts.reviewDbPath).close();
  const db: BetterSqlite3.Database = openReadOnly(opts.resultsDbPath);
  try {
    db.prepare('ATTACH DATABASE ? AS review').run(resolve(opts.reviewDbPath));
    const where = ['r.image_path IS NOT NULL'];
    const args: Record<string, unknown> = {};
    if (filter.from !== undefined) { where.push('r.captured_at_ms >= @from'); args.from = filter.from; }
    if (filter.to !== undefined) { where.push('r.captured_at_ms < @to'); args.to = filter.to; }
    if (filter.verdict !== undefined) { where.push('r.verdict = @verdict'); args.verdict = filter.verdict; }
    if (filter.modelName !== undefined) { where.push('r.model_name = @modelName'); args.modelName = filter.modelName; }
    if (filter.modelVersion !== undefined) { where.push('r.model_version = @modelVersion'); args.modelVersion = filter.modelVersion; }
    if (filter.runId !== undefined) { where.push('r.run_id = @runId'); args.runId = filter.runId; }
    if (filter.label !== undefined) { where.push('l.verdict = @label'); args.label = filter.label; }
    if (filter.labelledOnly) where.push('l.run_id IS NOT NULL');
    const sql = `SELECT r.run_id, r.seq, r.captured_at_ms, r.verdict, r.model_name, r.model_version, r.image_path,
                        l.verdict AS label, l.defect_class, l.regions_json, l.revision
                 FROM results r LEFT JOIN review.labels l ON l.run_id = r.run_id AND l.seq = r.seq
                 WHERE ${where.join(' AND ')}
                 ORDER BY r.run_id, r.seq`;
    const rows = db.prepare(sql).all(args) as Row[];
    const classes = filter.classes ? new Set(filter.classes) : null;
    const sel: Selection = { items: [], excludedUnsure: 0, skippedUnlabelledRejects: 0, missingImages: 0 };
    for (const r of rows) {
      let role: 'good' | 'defect';
      if (r.label === 'unsure') { sel.excludedUnsure++; continue; }
      if (r.label === 'false_reject') role = 'good';
      else if (r.label === 'true_defect') role = 'defect';
      else if (r.verdict === 'pass') role = 'good';
      else { sel.skippedUnlabelledRejects++; continue; }
      const defectClass = role === 'defect' ? (r.defect_class || 'defect') : null;
      if (classes && defectClass !== null && !classes.has(defectClass)) continue;
      const sourcePath = resolve(opts.imagesDir, r.image_path);
      if (!existsSync(sourcePath)) { sel.missingImages++; continue; }
      sel.items.push({
        runId: r.run_id, seq: r.seq, capturedAtMs: r.captured_at_ms, modelVerdict: r.verdict,
        modelName: r.model_name, modelVersion: r.model_version, sourcePath, imagePath: r.image_path,
        name: exportName(r.run_id, r.seq, r.image_path), role, defectClass,
        regions: role === 'defect' ? parseRegions(r.regions_json, `${r.run_id}/${r.seq}`) : [],
        label: r.label, labelRevision: r.revision,
      });
    }
    return sel;
  } finally {
    db.close();
  }
}

/**
 * The class list of an export: the station's classes in their order, then any
 * other class the selection uses, sorted (so ids stay stable).
 */
export function exportClasses(stationClasses: readonly string[], items: readonly ExportItem[]): string[] {
  const out = [...new Set(stationClasses)];
  const extra = new Set<string>();
  for (const it of items) if (it.defectClass && !out.includes(it.defectClass)) extra.add(it.defectClass);
  return [...out, ...[...extra].sort()];
}
