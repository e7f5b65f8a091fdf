/**
 * Dataset export: a results database filled through ResultStore, images saved
 * by the real ImageWriter, labels in a real review database; each format is
 * exported and its files checked, then exported again and compared byte for byte.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGray } from '../inspector/core/gray-image.js';
import { openReviewDb } from '../inspector/review/review-db.js';
import { runExport } from '../inspector/export/run-export.js';
import { ExportRegistry } from '../inspector/export/export-registry.js';
import type { ExportFormat, ExportManifest, Region } from '../inspector/export/schema.js';
import { fillStation, putLabel, H, W } from './helpers/export-fixture.js';
import { buildApp } from '../inspector/server/app.js';
import { sleep } from './helpers/wait.js';
import { readZip } from './helpers/read-zip.js';

const RUN = 'run-1';
const CLASSES = ['scratch', 'spot', 'crack', 'missing_feature'];
const BOX: Region = { id: 'r1', kind: 'box', x: 10, y: 20, w: 30, h: 15 };
const TRI: Region = { id: 'r2', kind: 'polygon', points: [[50, 50], [90, 50], [70, 90]] };
const name = (seq: number): string => `${RUN}_${String(seq).padStart(8, '0')}.png`;

let work: string;
let resultsDbPath: string;
let reviewDbPath: string;
let imagesDir: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inspector-export-'));
  resultsDbPath = join(work, 'results.sqlite');
  reviewDbPath = join(work, 'review.sqlite');
  imagesDir = join(work, 'var');
  await fillStation({
    dbPath: resultsDbPath, imagesDir, runId: RUN,
    parts: [
      { seq: 1, verdict: 'pass' },   // unlabelled pass
      { seq: 2, verdict: 'reject' }, // true defect, scratch, box
      { seq: 3, verdict: 'reject' }, // true defect, spot, triangle
      { seq: 4, verdict: 'reject' }, // false reject → good
      { seq: 5, verdict: 'reject' }, // unsure → excluded
      { seq: 6, verdict: 'reject' }, // unlabelled reject
    ],
  });
  const db = openReviewDb(reviewDbPath);
  putLabel(db, RUN, 2, { verdict: 'unsure' });
  putLabel(db, RUN, 2, { verdict: 'true_defect', defectClass: 'scratch', regions: [BOX] }); // revision 2
  putLabel(db, RUN, 3, { verdict: 'true_defect', defectClass: 'spot', regions: [TRI] });
  putLabel(db, RUN, 4, { verdict: 'false_reject' });
  putLabel(db, RUN, 5, { verdict: 'unsure' });
  db.close();
});
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

const exportTo = (format: ExportFormat, dir: string, filter = {}) => runExport({
  format, filter, resultsDbPath, reviewDbPath, imagesDir, outDir: join(work, dir), stationClasses: CLASSES,
});
const manifestOf = (dir: string): ExportManifest => JSON.parse(readFileSync(join(work, dir, 'manifest.json'), 'utf8')) as ExportManifest;

function filesOf(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesOf(root, join(dir, e.name)) : [join(dir, e.name).slice(root.length + 1)]).sort();
}

/** Exporting the same selection twice gives the same file names and bytes. */
async function expectReproducible(format: ExportFormat, first: string): Promise<void> {
  const again = `${first}-again`;
  await exportTo(format, again);
  const a = filesOf(join(work, first));
  expect(filesOf(join(work, again))).toEqual(a);
  for (const f of a) expect(readFileSync(join(work, again, f)).equals(readFileSync(join(work, first, f))), f).toBe(true);
}

describe('export', () => {
  it('mvtec: good / defect/<class> / masks/<class>, masks rasterised from the drawn regions', async () => {
    const res = await exportTo('mvtec', 'mvtec');
    expect(res.counts).toMatchObject({ images: 3, good: 1, excludedUnsure: 1, missingImages: 0, annotations: 2 });
    expect(res.counts.defect).toMatchObject({ scratch: 1, spot: 1, crack: 0 });
    const root = join(work, 'mvtec');
    expect(filesOf(root)).toEqual([
      `defect/scratch/${name(2)}`, `defect/spot/${name(3)}`, 'folder.yaml', `good/${name(4)}`, 'manifest.json',
      `masks/scratch/${name(2)}`, `masks/spot/${name(3)}`,
    ]);
    // the exported image is the station's PNG, unchanged
    expect(readFileSync(join(root, 'defect/scratch', name(2))).equals(readFileSync(join(imagesDir, 'images', RUN, 'reject', '2.png')))).toBe(true);

    const box = await readGray(join(root, 'masks/scratch', name(2)));
    expect([box.width, box.height]).toEqual([W, H]);
    let mismatched = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const inside = x >= 10 && x < 40 && y >= 20 && y < 35;
      if ((box.data[y * W + x] === 255) !== inside || (box.data[y * W + x] !== 0 && box.data[y * W + x] !== 255)) mismatched++;
    }
    expect(mismatched).toBe(0); // exactly the box's 30×15 pixels, nothing else

    const tri = await readGray(join(root, 'masks/spot', name(3)));
    let set = 0; let outsideBbox = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      if (tri.data[y * W + x] === 0) continue;
      set++;
      if (x < 50 || x >= 90 || y < 50 || y >= 90) outsideBbox++;
    }
    expect(outsideBbox).toBe(0);
    expect(Math.abs(set - 800) / 800).toBeLessThan(0.05); // triangle area 40*40/2
    expect(tri.data[65 * W + 70]).toBe(255); // inside
    expect(tri.data[85 * W + 55]).toBe(0);   // in the bbox, outside the triangle

    const yaml = readFileSync(join(root, 'folder.yaml'), 'utf8');
    expect(yaml).toContain('normal_dir: good');
    expect(yaml).toContain('- masks/scratch');
    await expectReproducible('mvtec', 'mvtec');
  });

  it('coco: the drawn box with its bbox, area and category; stable ids; unsure excluded', async () => {
    await exportTo('coco', 'coco');
    const coco = JSON.parse(readFileSync(join(work, 'coco', 'annotations.json'), 'utf8')) as {
      images: Array<{ id: number; file_name: string; width: number; height: number; seq: number }>;
      annotations: Array<{ id: number; image_id: number; category_id: number; bbox: number[]; area: number; segmentation: number[][] }>;
      categories: Array<{ id: number; name: string }>;
    };
    expect(coco.categories).toEqual(CLASSES.map((n, i) => ({ id: i + 1, name: n, supercategory: 'defect' })));
    expect(coco.images.map((i) => [i.id, i.seq, i.file_name, i.width, i.height])).toEqual([
      [1, 2, `images/${name(2)}`, W, H], [2, 3, `images/${name(3)}`, W, H], [3, 4, `images/${name(4)}`, W, H]]);
    expect(coco.annotations).toHaveLength(2);
    const [a, b] = coco.annotations as [typeof coco.annotations[0], typeof coco.annotations[0]];
    expect(a).toMatchObject({ id: 1, image_id: 1, category_id: 1, bbox: [10, 20, 30, 15], area: 450, segmentation: [[10, 20, 40, 20, 40, 35, 10, 35]] });
    expect(b).toMatchObject({ id: 2, image_id: 2, category_id: 2, bbox: [50, 50, 40, 40], area: 800, segmentation: [[50, 50, 90, 50, 70, 90]] });
    for (const im of coco.images) expect(existsSync(join(work, 'coco', im.file_name))).toBe(true);
    expect(readdirSync(join(work, 'coco', 'images'))).not.toContain(name(5));
    await expectReproducible('coco', 'coco');
  });

  it('yolo: normalised class cx cy w h lines, empty label files for good images, data.yaml', async () => {
    await exportTo('yolo', 'yolo');
    const root = join(work, 'yolo');
    const line = readFileSync(join(root, 'labels', name(2).replace('.png', '.txt')), 'utf8').trim();
    const [cls, cx, cy, w, h] = line.split(' ').map(Number);
    expect(cls).toBe(0);
    expect(cx).toBeCloseTo((10 + 15) / W, 6);
    expect(cy).toBeCloseTo((20 + 7.5) / H, 6);
    expect(w).toBeCloseTo(30 / W, 6);
    expect(h).toBeCloseTo(15 / H, 6);
    expect(readFileSync(join(root, 'labels', name(3).replace('.png', '.txt')), 'utf8'))
      .toBe(`1 ${(70 / W).toFixed(6)} ${(70 / H).toFixed(6)} ${(40 / W).toFixed(6)} ${(40 / H).toFixed(6)}\n`);
    expect(readFileSync(join(root, 'labels', name(4).replace('.png', '.txt')), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'classes.txt'), 'utf8')).toBe(CLASSES.join('\n') + '\n');
    expect(readFileSync(join(root, 'data.yaml'), 'utf8')).toContain('  3: "missing_feature"');
    expect(readdirSync(join(root, 'images')).sort()).toEqual([name(2), name(3), name(4)]);
    await expectReproducible('yolo', 'yolo');
  });

  it('the manifest lists every file with its sha256; filters narrow the selection; exports are registered', async () => {
    const m = manifestOf('coco');
    expect(m.files.map((f) => f.path)).toEqual(filesOf(join(work, 'coco')).filter((f) => f !== 'manifest.json'));
    const { createHash } = await import('node:crypto');
    for (const f of m.files) {
      const bytes = readFileSync(join(work, 'coco', f.path));
      expect(f.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(f.bytes).toBe(statSync(join(work, 'coco', f.path)).size);
    }
    expect(m.items.find((i) => i.seq === 2)).toMatchObject({ label: 'true_defect', labelRevision: 2, defectClass: 'scratch' });

    const all = await exportTo('coco', 'coco-all', { labelledOnly: false });
    expect(all.counts).toMatchObject({ images: 4, good: 2, skippedUnlabelledRejects: 1, excludedUnsure: 1 });
    const spot = await exportTo('mvtec', 'mvtec-spot', { classes: ['spot'] });
    expect(spot.counts).toMatchObject({ images: 2, good: 1 });
    expect(spot.counts.defect).toMatchObject({ spot: 1, scratch: 0 });
    const late = await exportTo('yolo', 'yolo-late', { from: 1_700_000_000_000 + 3500 });
    expect(manifestOf('yolo-late').items.map((i) => i.seq)).toEqual([4]);
    expect(late.counts.excludedUnsure).toBe(1);
    await expect(exportTo('yolo', 'yolo-bad', { from: 5, to: 1 })).rejects.toMatchObject({ code: 'INSPECTOR_EXPORT_BAD_FILTER', statusCode: 400 });
    await expect(exportTo('yolo', 'yolo')).rejects.toMatchObject({ code: 'INSPECTOR_EXPORT_OUT_EXISTS' });

    const db = openReviewDb(reviewDbPath);
    const reg = new ExportRegistry(db);
    const list = reg.list();
    expect(list.filter((e) => e.status === 'done')).toHaveLength(9); // 3 formats × 2 + 3 filtered; refused ones are not registered
    expect(list.find((e) => e.outDir === join(work, 'coco-all'))?.counts?.images).toBe(4);
    const held = db.prepare(`SELECT DISTINCT seq FROM export_items i JOIN exports e ON e.id = i.export_id
      WHERE e.status = 'done' ORDER BY seq`).pluck().all();
    expect(held).toEqual([1, 2, 3, 4]);
    db.close();
  });

  it('inspector export (CLI) writes the same files as the library export of the same selection', async () => {
    const out = join(work, 'cli-coco');
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/inspector.js', 'export', '--format', 'coco', '--out', out,
      '--db', resultsDbPath, '--images', imagesDir, '--classes', CLASSES.join(',')], { env: { ...process.env, VITEST: '', INSPECTOR_LOG_LEVEL: 'warn' }, timeout: 60_000 });
    expect(JSON.parse(stdout)).toMatchObject({ outDir: out, counts: { images: 3, excludedUnsure: 1 } });
    const a = filesOf(join(work, 'coco'));
    expect(filesOf(out)).toEqual(a);
    for (const f of a) expect(readFileSync(join(out, f)).equals(readFileSync(join(work, 'coco', f))), f).toBe(true);
    await expect(promisify(execFile)(process.execPath, ['bin/inspector.js', 'export', '--format', 'coco', '--out', out, '--db', resultsDbPath,
      '--images', imagesDir], { env: { ...process.env, VITEST: '' }, timeout: 60_000 })).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('INSPECTOR_EXPORT_OUT_EXISTS') });
  });

  it('HTTP: POST /api/exports runs in a worker (qa/ml only), GET shows progress and the folder, files download, audited', async () => {
    const app = await buildApp({
      view: { health: async () => { throw new Error('no station'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) },
      logger: false, reviewDbPath, resultsDbPath, imagesDir, stationClasses: CLASSES, uiDir: join(work, 'no-ui'),
    });
    try {
      const token = async (name: string, role: 'qa' | 'ml' | 'operator'): Promise<Record<string, string>> => {
        const a = await app.review.accounts.create(name, `${name}-password`, role);
        return { authorization: `Bearer ${app.review.accounts.createToken(a.id, 'test').token}` };
      };
      const ml = await token('ml1', 'ml');
      const op = await token('op1', 'operator');
      expect((await app.inject({ method: 'POST', url: '/api/exports', headers: op, payload: { format: 'coco' } })).statusCode).toBe(403);
      expect((await app.inject({ method: 'POST', url: '/api/exports', payload: { format: 'coco' } })).statusCode).toBe(401);
      const bad = await app.inject({ method: 'POST', url: '/api/exports', headers: ml, payload: { format: 'coco', filter: { from: 9, to: 3 } } });
      expect([bad.statusCode, bad.json().code]).toEqual([400, 'INSPECTOR_EXPORT_BAD_FILTER']);
      expect((await app.inject({ method: 'POST', url: '/api/exports', headers: ml, payload: { format: 'voc' } })).statusCode).toBe(400);

      const res = await app.inject({ method: 'POST', url: '/api/exports', headers: ml, payload: { format: 'coco', filter: { runId: RUN } } });
      expect(res.statusCode).toBe(202);
      const { id } = res.json() as { id: string };
      let st = await app.inject({ method: 'GET', url: `/api/exports/${id}`, headers: ml });
      const phases = new Set<string>();
      for (let i = 0; i < 600 && st.json().status === 'running'; i++) {
        phases.add(st.json().progress.phase);
        await sleep(50);
        st = await app.inject({ method: 'GET', url: `/api/exports/${id}`, headers: ml });
      }
      expect(st.statusCode).toBe(200);
      expect(st.json()).toMatchObject({ id, status: 'done', format: 'coco', actor: 'ml1', progress: { phase: 'done', done: 3, total: 3 },
        counts: { images: 3, excludedUnsure: 1 }, path: join(imagesDir, 'exports', `${id}-coco`) });
      const file = await app.inject({ method: 'GET', url: `/api/exports/${id}/file/annotations.json`, headers: ml });
      expect(file.statusCode).toBe(200);
      expect(file.rawPayload.equals(readFileSync(join(work, 'coco', 'annotations.json')))).toBe(true); // same selection, same bytes
      expect((await app.inject({ method: 'GET', url: `/api/exports/${id}/file/..%2F..%2Fresults.sqlite`, headers: ml })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/api/exports/zz-00000000', headers: ml })).json().code).toBe('INSPECTOR_EXPORT_NOT_FOUND');

      // the whole export as one zip: every file of its folder, byte for byte, the manifest inside
      const zip = await app.inject({ method: 'GET', url: `/api/exports/${id}/archive`, headers: ml });
      expect(zip.statusCode).toBe(200);
      expect(zip.headers['content-type']).toBe('application/zip');
      expect(zip.headers['content-disposition']).toBe(`attachment; filename="${id}-coco.zip"`);
      const entries = readZip(zip.rawPayload);
      const folder = join(imagesDir, 'exports', `${id}-coco`);
      expect([...entries.keys()]).toEqual(filesOf(folder).map((f) => `${id}-coco/${f}`));
      for (const f of filesOf(folder)) expect(entries.get(`${id}-coco/${f}`)!.equals(readFileSync(join(folder, f))), f).toBe(true);
      const zManifest = JSON.parse(entries.get(`${id}-coco/manifest.json`)!.toString()) as ExportManifest;
      expect(zManifest.items.map((i) => i.seq)).toEqual([2, 3, 4]);
      expect([...entries.keys()].filter((k) => k.endsWith('.png'))).toHaveLength(3);
      expect((await app.inject({ method: 'GET', url: `/api/exports/${id}/archive`, headers: op })).statusCode).toBe(403);
      expect((await app.inject({ method: 'GET', url: `/api/exports/${id}/archive` })).statusCode).toBe(401);
      const unknown = await app.inject({ method: 'GET', url: '/api/exports/zz-00000000/archive', headers: ml });
      expect([unknown.statusCode, unknown.json().code]).toEqual([404, 'INSPECTOR_EXPORT_NOT_FOUND']);
      expect((await app.inject({ method: 'GET', url: '/api/exports/..%2F..%2Fetc/archive', headers: ml })).statusCode).toBe(400);
      const list = (await app.inject({ method: 'GET', url: '/api/exports', headers: ml })).json() as Array<{ id: string; status: string }>;
      expect(list[0]).toMatchObject({ id, status: 'done' });
      expect(list.length).toBeGreaterThan(9); // the library and CLI exports are listed too
      // an export still running is a coded 409; one whose folder is gone a coded 410
      const reg = new ExportRegistry(app.review.db);
      reg.start({ id: 'run1-0000aaaa', format: 'yolo', filter: {}, outDir: join(imagesDir, 'exports', 'run1-0000aaaa-yolo'), actor: 'ml1', items: [] });
      const running = await app.inject({ method: 'GET', url: '/api/exports/run1-0000aaaa/archive', headers: ml });
      expect([running.statusCode, running.json().code]).toEqual([409, 'INSPECTOR_EXPORT_NOT_READY']);
      reg.finish('run1-0000aaaa', { images: 0 } as never, 'f'.repeat(64));
      const gone = await app.inject({ method: 'GET', url: '/api/exports/run1-0000aaaa/archive', headers: ml });
      expect([gone.statusCode, gone.json().code]).toEqual([410, 'INSPECTOR_EXPORT_GONE']);

      const audit = app.review.audit.list({ limit: 10, action: 'export.' });
      expect(audit[0]).toMatchObject({ actor: 'ml1', action: 'export.download', target: `export:${id}`, after: { entries: entries.size } });
      expect(audit[1]).toMatchObject({ actor: 'ml1', action: 'export.start', target: `export:${id}` });
    } finally {
      await app.close();
    }
  });
});

describe('an export interrupted by a dead process', () => {
  it('is failed with its reason at start-up (failStaleExports), its parts released and its partial folder removed', async () => {
    const { failStaleExports } = await import('../inspector/export/export-registry.js');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const dir = join(work, 'stale');
    const dbPath = join(dir, 'review.sqlite');
    mkdirSync(dir, { recursive: true });
    const outDir = join(dir, 'exports', 'e1-coco');
    const partial = join(dir, 'exports', `.e1-coco.partial-e1`);
    mkdirSync(partial, { recursive: true });
    writeFileSync(join(partial, 'half-written.png'), 'x');
    let db = openReviewDb(dbPath);
    const reg = new ExportRegistry(db);
    const items = [{ runId: RUN, seq: 1, imagePath: 'images/a.png' }, { runId: RUN, seq: 2, imagePath: 'images/b.png' }];
    reg.start({ id: 'e1', format: 'coco', filter: {}, outDir, actor: 'qa-ann', items });
    reg.start({ id: 'e2', format: 'yolo', filter: {}, outDir: join(dir, 'exports', 'e2-yolo'), actor: 'qa-ann', items });
    reg.finish('e2', { images: 2 } as never, 'f'.repeat(64));
    db.close(); // the process "dies" here: e1 stays running

    expect(failStaleExports(dbPath, 'interrupted: the station stopped while the export ran')).toEqual(['e1']);
    db = openReviewDb(dbPath);
    try {
      const r = new ExportRegistry(db);
      expect(r.get('e1')).toMatchObject({ status: 'failed', error: 'interrupted: the station stopped while the export ran' });
      expect(r.get('e1')!.finishedAtMs).toBeGreaterThan(0);
      expect(r.get('e2')).toMatchObject({ status: 'done', error: null });
      const held = db.prepare('SELECT export_id, COUNT(*) AS n FROM export_items GROUP BY export_id').all();
      expect(held).toEqual([{ export_id: 'e2', n: 2 }]); // e1's parts are released for retention, e2's stay held
    } finally { db.close(); }
    expect(existsSync(partial)).toBe(false);
    expect(failStaleExports(dbPath, 'again')).toEqual([]); // nothing left running
  });
});
