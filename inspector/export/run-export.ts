/**
 * One export, start to end, in the calling thread (the CLI process or the
 * export worker; never the station's main thread):
 *
 *   select (fixed order) → register the parts in the review db → write the
 *   format into `<out>.partial-<id>` → sha256 every file → manifest.json →
 *   rename to `<out>` → mark done.
 *
 * The folder appears complete or not at all. Reproducible: file names,
 * ordering and contents depend only on the selection (no timestamps inside
 * files); the manifest lists every file with its sha256.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Logger } from '../core/logger.js';
import { createProgress, type Progress, type ProgressStream } from '../core/progress.js';
import { openReviewDb } from '../review/review-db.js';
import { ExportOutExistsError } from './errors.js';
import { ExportRegistry } from './export-registry.js';
import { checkFilter, exportClasses, normaliseFilter, selectForExport } from './selection.js';
import type { ExportCounts, ExportFilter, ExportFormat, ExportManifest, ManifestFile } from './schema.js';
import { stableJson, type FormatWriter } from './writers/common.js';
import { writeCoco } from './writers/coco.js';
import { writeMvtec } from './writers/mvtec.js';
import { writeYolo } from './writers/yolo.js';

export const WRITERS: Record<ExportFormat, FormatWriter> = { mvtec: writeMvtec, coco: writeCoco, yolo: writeYolo };

export interface ExportProgress { phase: 'select' | 'write' | 'hash' | 'done'; done: number; total: number }

/**
 * The CLI's progress for an export (core/progress.ts): one reporter per phase
 * (`export write`, `export hash`): a bar on a terminal, else a line on stderr
 * at least every 30 s and at the end of each phase. `stop()` ends the last one.
 */
export function exportProgressReporter(o: { enabled?: boolean; stream?: ProgressStream; intervalMs?: number } = {}):
  { onProgress: (p: ExportProgress) => void; stop: () => void } {
  let current: Progress | null = null;
  let phase = '';
  return {
    onProgress(p) {
      if (p.phase !== phase) {
        current?.stop();
        current = null;
        phase = p.phase;
        if (p.phase === 'select' || p.phase === 'done') return;
        current = createProgress({ label: `export ${p.phase}`, ...o });
        current.start(p.total, p.done);
        return;
      }
      current?.update(p.done, p.total);
    },
    stop() { current?.stop(); current = null; },
  };
}

export interface RunExportOptions {
  format: ExportFormat;
  filter: ExportFilter;
  resultsDbPath: string;
  reviewDbPath: string;
  /** the station's images root (result rows hold paths relative to it) */
  imagesDir: string;
  /** the export folder; must not exist or be empty */
  outDir: string;
  /** the station's defect classes (category/class ids follow this order) */
  stationClasses: readonly string[];
  /** default 'link' (hard links, copy across file systems) */
  images?: 'link' | 'copy';
  id?: string;
  actor?: string;
  onProgress?: (p: ExportProgress) => void;
  log?: Logger;
}

export interface ExportResult {
  id: string;
  outDir: string;
  counts: ExportCounts;
  manifestSha256: string;
  files: number;
  bytes: number;
}

export const newExportId = (): string => `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await listFiles(root, p));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join('/'));
  }
  return out;
}

function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    let bytes = 0;
    createReadStream(path).on('data', (c: Buffer | string) => { bytes += c.length; h.update(c); })
      .on('error', rej).on('end', () => res({ sha256: h.digest('hex'), bytes }));
  });
}

async function emptyOrAbsent(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return true;
  return (await readdir(dir)).length === 0;
}

export async function runExport(opts: RunExportOptions): Promise<ExportResult> {
  const id = opts.id ?? newExportId();
  const filter = normaliseFilter(checkFilter(opts.filter));
  const outDir = resolve(opts.outDir);
  const progress = opts.onProgress ?? (() => {});
  if (!(await emptyOrAbsent(outDir))) throw new ExportOutExistsError(outDir);

  progress({ phase: 'select', done: 0, total: 0 });
  const sel = selectForExport({ resultsDbPath: opts.resultsDbPath, reviewDbPath: opts.reviewDbPath, imagesDir: opts.imagesDir, filter });
  const classes = exportClasses(opts.stationClasses, sel.items);
  const db = openReviewDb(opts.reviewDbPath);
  const registry = new ExportRegistry(db);
  const staging = join(dirname(outDir), `.${basename(outDir)}.partial-${id}`);
  registry.start({ id, format: opts.format, filter, outDir, actor: opts.actor ?? 'cli', items: sel.items });
  opts.log?.info({ id, format: opts.format, items: sel.items.length, outDir }, 'export started');
  try {
    await rm(staging, { recursive: true, force: true });
    let done = 0;
    const total = sel.items.length;
    progress({ phase: 'write', done, total });
    const written = await WRITERS[opts.format](sel.items, {
      outDir: staging, classes, images: opts.images ?? 'link',
      onItem: () => { done++; progress({ phase: 'write', done, total }); },
    });

    const defect: Record<string, number> = {};
    for (const c of classes) defect[c] = 0;
    for (const it of sel.items) if (it.role === 'defect') defect[it.defectClass!] = (defect[it.defectClass!] ?? 0) + 1;
    const counts: ExportCounts = {
      images: sel.items.length, good: sel.items.filter((i) => i.role === 'good').length, defect,
      annotations: written.annotations, excludedUnsure: sel.excludedUnsure,
      skippedUnlabelledRejects: sel.skippedUnlabelledRejects, missingImages: sel.missingImages,
      defectsWithoutRegions: written.defectsWithoutRegions,
    };

    const paths = (await listFiles(staging)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const files: ManifestFile[] = [];
    for (let i = 0; i < paths.length; i++) {
      const { sha256, bytes } = await sha256File(join(staging, paths[i]!));
      files.push({ path: paths[i]!, bytes, sha256 });
      progress({ phase: 'hash', done: i + 1, total: paths.length });
    }
    const manifest: ExportManifest = {
      version: 1, format: opts.format, filter, classes, counts,
      items: sel.items.map((it) => ({
        runId: it.runId, seq: it.seq, file: it.name, label: it.label, labelRevision: it.labelRevision, defectClass: it.defectClass,
      })),
      files,
    };
    const manifestText = stableJson(manifest);
    await writeFile(join(staging, 'manifest.json'), manifestText);
    const manifestSha256 = createHash('sha256').update(manifestText).digest('hex');
    if (existsSync(outDir)) await rmdir(outDir); // empty (checked above)
    await rename(staging, outDir);
    registry.finish(id, counts, manifestSha256);
    const bytes = files.reduce((s, f) => s + f.bytes, 0) + Buffer.byteLength(manifestText);
    progress({ phase: 'done', done: total, total });
    opts.log?.info({ id, format: opts.format, outDir, counts, files: files.length + 1, bytes }, 'export done');
    return { id, outDir, counts, manifestSha256, files: files.length + 1, bytes };
  } catch (err) {
    registry.fail(id, err instanceof Error ? err.message : String(err));
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    opts.log?.error({ id, err }, 'export failed');
    throw err;
  } finally {
    db.close();
  }
}
