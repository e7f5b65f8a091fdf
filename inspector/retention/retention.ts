/**
 * One retention pass over the station's saved images (`<imagesDir>/images`).
 *
 * Never deleted: the image of a labelled part (any verdict) or of a part held
 * by a running or finished export. Everything else is a candidate, oldest
 * first (captured_at_ms):
 *
 *   policy (always)   saved passes outside the sample, older than passDays
 *                     rejects older than rejectDays
 *                     orphan files (no result row names them) older than orphanGraceMs
 *                     rows whose files are already gone (0 bytes; the row is cleared)
 *   budget (only while usage > budgetBytes)
 *                     the remaining passes outside the sample, then sampled passes,
 *                     then younger rejects
 *
 * The pass sample is stable from pass to pass: a pass is kept when
 * fnv1a("<runId>:<seq>") % passKeepEvery == 0. Usage counts the files under
 * `images/` and `exports/` once per inode (exports hard-link the station's files).
 * The caller gets the deleted parts back to mark their result rows (image paths
 * set to null through ResultStore); the pass and every deleted file are
 * recorded in the review database. Runs in the retention worker (nice 19) or
 * the CLI process, never on the station's main thread. File system calls are
 * synchronous on purpose: they then run on the (reniced) calling thread, not
 * on libuv's shared thread pool, which the station's main thread also uses.
 */
import { lstatSync, readdirSync, unlinkSync, type Dirent } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import type { Logger } from '../core/logger.js';
import { openReadOnly } from '../results/result-store.js';
import { openReviewDb } from '../review/review-db.js';
import { ensureRetentionTables } from './retention-db.js';

export interface RetentionPolicy {
  budgetBytes: number;
  /** rejects are kept this many days */
  rejectDays: number;
  /** passes are all kept this many days, then only the sample */
  passDays: number;
  /** keep one saved pass in N (by a stable hash of runId:seq) */
  passKeepEvery: number;
  /** orphan image files (no row names them) younger than this are left alone (default 1 h) */
  orphanGraceMs?: number;
}

export interface RetentionOptions extends RetentionPolicy {
  imagesDir: string;
  resultsDbPath: string;
  reviewDbPath: string;
  /** wall clock for ages (default Date.now()) */
  now?: number;
  /** decide and report, delete nothing */
  dryRun?: boolean;
  log?: Logger;
}

export type DeleteReason = 'pass-unsampled' | 'reject-expired' | 'orphan' | 'missing' | 'budget-pass' | 'budget-pass-sample' | 'budget-reject';

export interface DeletedPart {
  runId: string | null; seq: number | null; imagePath: string; anomalyMapPath: string | null;
  bytes: number; files: number; reason: DeleteReason;
}

export interface RetentionReport {
  dryRun: boolean;
  usageBefore: number;
  usageAfter: number;
  budgetBytes: number;
  budgetMet: boolean;
  freedFiles: number;
  freedBytes: number;
  byReason: Record<DeleteReason, { parts: number; bytes: number }>;
  kept: { labelled: number; exported: number; sampledPasses: number; youngRejects: number; youngPasses: number };
  durationMs: number;
}

interface Row {
  run_id: string; seq: number; captured_at_ms: number; verdict: 'pass' | 'reject';
  image_path: string; anomaly_map_path: string | null; labelled: number; exported: number;
}

const DAY = 86_400_000;

/** 32-bit FNV-1a of a string (stable pass sample). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}
export const inPassSample = (runId: string, seq: number, every: number): boolean => fnv1a(`${runId}:${seq}`) % every === 0;

interface FileInfo { size: number; ino: string; mtimeMs: number }

/** Files under `dir` keyed by their path relative to `root` (posix separators). */
function walk(root: string, dir: string, out: Map<string, FileInfo>): void {
  let entries: Dirent[];
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { walk(root, p, out); continue; }
    if (!e.isFile()) continue;
    try {
      const st = lstatSync(p);
      out.set(relative(root, p).split(sep).join('/'), { size: st.size, ino: `${st.dev}:${st.ino}`, mtimeMs: st.mtimeMs });
    } catch { /* removed meanwhile */ }
  }
}

export async function runRetention(opts: RetentionOptions): Promise<{ report: RetentionReport; deleted: DeletedPart[] }> {
  const t0 = performance.now();
  const now = opts.now ?? Date.now();
  const root = resolve(opts.imagesDir);
  const grace = opts.orphanGraceMs ?? 3_600_000;
  const review = openReviewDb(opts.reviewDbPath);
  ensureRetentionTables(review);

  // what is on disk, once per inode
  const files = new Map<string, FileInfo>();
  walk(root, join(root, 'images'), files);
  walk(root, join(root, 'exports'), files);
  const inodes = new Map<string, number>();
  for (const f of files.values()) inodes.set(f.ino, f.size);
  const usageBefore = [...inodes.values()].reduce((a, b) => a + b, 0);

  // every part with an image, oldest first, with its protection
  const db = openReadOnly(opts.resultsDbPath);
  let rows: Row[];
  try {
    db.prepare('ATTACH DATABASE ? AS review').run(resolve(opts.reviewDbPath));
    rows = db.prepare(`SELECT r.run_id, r.seq, r.captured_at_ms, r.verdict, r.image_path, r.anomaly_map_path,
        EXISTS (SELECT 1 FROM review.labels l WHERE l.run_id = r.run_id AND l.seq = r.seq) AS labelled,
        EXISTS (SELECT 1 FROM review.export_items i JOIN review.exports e ON e.id = i.export_id
                WHERE i.run_id = r.run_id AND i.seq = r.seq AND e.status IN ('running', 'done')) AS exported
      FROM results r WHERE r.image_path IS NOT NULL
      ORDER BY r.captured_at_ms, r.run_id, r.seq`).all() as Row[];
  } finally {
    db.close();
  }
  const heldPaths = new Set(review.prepare(`SELECT i.image_path FROM export_items i JOIN exports e ON e.id = i.export_id
    WHERE e.status IN ('running', 'done')`).pluck().all() as string[]);

  const kept = { labelled: 0, exported: 0, sampledPasses: 0, youngRejects: 0, youngPasses: 0 };
  const policy: DeletedPart[] = [];
  const pressure: Array<{ part: DeletedPart; rank: number; at: number }> = [];
  const referenced = new Set<string>();
  const sizeOf = (p: string | null): { bytes: number; files: number } => {
    const f = p === null ? undefined : files.get(p);
    return f ? { bytes: f.size, files: 1 } : { bytes: 0, files: 0 };
  };
  for (const r of rows) {
    referenced.add(r.image_path);
    if (r.anomaly_map_path) referenced.add(r.anomaly_map_path);
    if (r.labelled) { kept.labelled++; continue; }
    if (r.exported || heldPaths.has(r.image_path)) { kept.exported++; continue; }
    const a = sizeOf(r.image_path); const b = sizeOf(r.anomaly_map_path);
    const part = (reason: DeleteReason): DeletedPart => ({
      runId: r.run_id, seq: r.seq, imagePath: r.image_path, anomalyMapPath: r.anomaly_map_path,
      bytes: a.bytes + b.bytes, files: a.files + b.files, reason,
    });
    const age = now - r.captured_at_ms;
    if (a.files + b.files === 0) { policy.push(part('missing')); continue; } // files already gone: clear the row
    if (r.verdict === 'pass') {
      const sampled = inPassSample(r.run_id, r.seq, opts.passKeepEvery);
      if (sampled) { kept.sampledPasses++; pressure.push({ part: part('budget-pass-sample'), rank: 1, at: r.captured_at_ms }); }
      else if (age > opts.passDays * DAY) policy.push(part('pass-unsampled'));
      else { kept.youngPasses++; pressure.push({ part: part('budget-pass'), rank: 0, at: r.captured_at_ms }); }
    } else if (age > opts.rejectDays * DAY) {
      policy.push(part('reject-expired'));
    } else {
      kept.youngRejects++;
      pressure.push({ part: part('budget-reject'), rank: 2, at: r.captured_at_ms });
    }
  }
  for (const [p, f] of files) {
    if (!p.startsWith('images/') || referenced.has(p) || heldPaths.has(p) || now - f.mtimeMs < grace) continue;
    policy.push({ runId: null, seq: null, imagePath: p, anomalyMapPath: null, bytes: f.size, files: 1, reason: 'orphan' });
  }

  // policy first, then pressure (passes outside the sample, the sample, rejects; oldest first) while over budget
  let usage = usageBefore;
  const chosen: DeletedPart[] = [];
  for (const p of policy) { chosen.push(p); usage -= p.bytes; }
  pressure.sort((x, y) => x.rank - y.rank || x.at - y.at);
  for (const { part } of pressure) {
    if (usage <= opts.budgetBytes) break;
    if (part.bytes === 0) continue;
    chosen.push(part);
    usage -= part.bytes;
    if (part.reason === 'budget-pass-sample') kept.sampledPasses--;
    else if (part.reason === 'budget-pass') kept.youngPasses--;
    else kept.youngRejects--;
  }

  // delete (unlink), counting only what was really removed
  const deleted: DeletedPart[] = [];
  let freedFiles = 0; let freedBytes = 0;
  for (const p of chosen) {
    let bytes = 0; let n = 0;
    for (const rel of [p.imagePath, p.anomalyMapPath]) {
      if (rel === null) continue;
      const f = files.get(rel);
      if (!f) continue;
      if (!opts.dryRun) {
        try { unlinkSync(join(root, rel)); } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') opts.log?.warn({ err, path: rel }, 'retention could not delete a file');
          continue;
        }
      }
      bytes += f.size; n++;
    }
    freedFiles += n; freedBytes += bytes;
    deleted.push({ ...p, bytes, files: n });
  }

  const byReason = Object.fromEntries((['pass-unsampled', 'reject-expired', 'orphan', 'missing', 'budget-pass', 'budget-pass-sample', 'budget-reject'] as const)
    .map((r) => [r, { parts: 0, bytes: 0 }])) as RetentionReport['byReason'];
  for (const d of deleted) { byReason[d.reason].parts++; byReason[d.reason].bytes += d.bytes; }
  const usageAfter = usageBefore - freedBytes;
  const report: RetentionReport = {
    dryRun: opts.dryRun ?? false, usageBefore, usageAfter, budgetBytes: opts.budgetBytes,
    budgetMet: usageAfter <= opts.budgetBytes, freedFiles, freedBytes, byReason, kept,
    durationMs: Math.round(performance.now() - t0),
  };

  review.transaction(() => {
    const runId = Number(review.prepare(`INSERT INTO retention_runs (at_ms, dry_run, freed_files, freed_bytes, usage_before,
      usage_after, budget_bytes, budget_met, report_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(now, report.dryRun ? 1 : 0,
      freedFiles, freedBytes, usageBefore, usageAfter, opts.budgetBytes, report.budgetMet ? 1 : 0, JSON.stringify(report)).lastInsertRowid);
    if (report.dryRun) return;
    const ins = review.prepare(`INSERT INTO retention_deleted (retention_run_id, run_id, seq, image_path, anomaly_map_path, bytes, reason, at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    for (const d of deleted) ins.run(runId, d.runId, d.seq, d.imagePath, d.anomalyMapPath, d.bytes, d.reason, now);
  })();
  review.close();
  const level = report.budgetMet ? 'info' : 'warn';
  opts.log?.[level]({ freedFiles, freedBytes, usageBefore, usageAfter, budgetBytes: opts.budgetBytes, byReason, kept, dryRun: report.dryRun },
    report.budgetMet ? 'retention pass done' : 'retention pass done; still over the disk budget (the rest is labelled, exported or gone)');
  return { report, deleted };
}
