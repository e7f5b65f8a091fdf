/**
 * Evaluation (the metrics are in eval-metrics.test.ts): the dataset
 * readers on tiny trees in each layout, scoring at arbitrary frame sizes (the
 * same numbers as the station's runner), and `inspector eval` end to end on
 * the synthetic test split with the default model.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Value } from '@sinclair/typebox/value';
import { readGray, type GrayImage } from '../inspector/core/gray-image.js';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { detectLayout, limitItems, openDataset } from '../inspector/eval/datasets.js';
import { PackageScorer } from '../inspector/eval/package-scorer.js';
import { EvalReport } from '../inspector/eval/report-schema.js';
import { runEval } from '../inspector/eval/run-eval.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { teachPackage } from '../inspector/teach/teach-package.js';

const run = promisify(execFile);
const DEFAULT_MODEL = 'models/default/1.0.0';

// ---------------------------------------------------------------- readers

function img(w: number, h: number, v = 128): GrayImage {
  return { width: w, height: h, data: new Uint8Array(w * h).fill(v) };
}
async function writeImage(path: string, im: GrayImage): Promise<void> {
  const s = sharp(im.data, { raw: { width: im.width, height: im.height, channels: 1 } });
  await (path.endsWith('.jpg') ? s.jpeg({ quality: 95 }) : s.png()).toFile(path);
}

describe('dataset readers (tiny trees in each layout)', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'eval-readers-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('folder: good/, defect/<class>/, masks/<class>/ with same-named masks; split folders', async () => {
    const root = join(dir, 'export');
    for (const split of ['train', 'test']) {
      const s = join(root, split);
      await mkdir(join(s, 'good'), { recursive: true });
      await mkdir(join(s, 'defect', 'scratch'), { recursive: true });
      await mkdir(join(s, 'defect', 'spot'), { recursive: true });
      await mkdir(join(s, 'masks', 'scratch'), { recursive: true });
      await writeImage(join(s, 'good', 'g1.png'), img(40, 30));
      await writeImage(join(s, 'good', 'g2.png'), img(40, 30));
      await writeImage(join(s, 'defect', 'scratch', 'd1.png'), img(40, 30));
      await writeImage(join(s, 'masks', 'scratch', 'd1.png'), img(40, 30, 255));
      await writeImage(join(s, 'defect', 'spot', 'd2.jpg'), img(40, 30));
      await writeFile(join(s, 'good', 'notes.txt'), 'not an image');
    }
    expect(await detectLayout(root)).toBe('folder');
    const ds = await openDataset(root, { split: 'train' });
    expect(ds.root).toBe(join(root, 'train'));
    expect(ds.classes).toEqual(['scratch', 'spot']);
    expect(ds.items.map((i) => [i.id, i.label, i.defectClass, i.mask !== null])).toEqual([
      ['good/g1.png', 'good', null, false], ['good/g2.png', 'good', null, false],
      ['defect/scratch/d1.png', 'defect', 'scratch', true], ['defect/spot/d2.jpg', 'defect', 'spot', false],
    ]);
    expect((await openDataset(root)).split).toBe('test');      // a root with splits defaults to test
    expect((await openDataset(join(root, 'test'))).items.length).toBe(4);
    await expect(openDataset(root, { split: 'val' })).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
    expect((await openDataset(root, { split: 'train', limit: 3 })).items.map((i) => i.label)).toEqual(['good', 'defect', 'good']);
  });

  it('folder: MVTec AD category layout (<class>/ + ground_truth/<class>/<stem>_mask.png)', async () => {
    const s = join(dir, 'mvtec', 'test');
    await mkdir(join(s, 'good'), { recursive: true });
    await mkdir(join(s, 'crack'), { recursive: true });
    await mkdir(join(dir, 'mvtec', 'ground_truth', 'crack'), { recursive: true });
    await writeImage(join(s, 'good', '000.png'), img(16, 16));
    await writeImage(join(s, 'crack', '000.png'), img(16, 16));
    // MVTec keeps ground_truth/ beside test/: link it into the split the way an export would
    await symlink(join(dir, 'mvtec', 'ground_truth'), join(s, 'ground_truth'));
    await writeImage(join(dir, 'mvtec', 'ground_truth', 'crack', '000_mask.png'), img(16, 16, 255));
    const ds = await openDataset(join(dir, 'mvtec'), { layout: 'folder', split: 'test' });
    expect(ds.items.map((i) => [i.label, i.defectClass, i.mask?.endsWith('000_mask.png') ?? false]))
      .toEqual([['good', null, false], ['defect', 'crack', true]]);
  });

  it('deeppcb: list file, template = good, tested = defective with typed boxes', async () => {
    const root = join(dir, 'deeppcb');
    await mkdir(join(root, 'PCBData', 'group1', '1'), { recursive: true });
    await mkdir(join(root, 'PCBData', 'group1', '1_not'), { recursive: true });
    for (const id of ['100', '101']) {
      await writeImage(join(root, 'PCBData', 'group1', '1', `${id}_temp.jpg`), img(64, 64));
      await writeImage(join(root, 'PCBData', 'group1', '1', `${id}_test.jpg`), img(64, 64));
      await writeFile(join(root, 'PCBData', 'group1', '1_not', `${id}.txt`), '1 2 11 12 1\n20 20 30 40 6\n');
    }
    await writeFile(join(root, 'subset_test.txt'), 'group1/1/100.jpg group1/1_not/100.txt\ngroup1/1/101.jpg group1/1_not/101.txt\n');
    expect(await detectLayout(root)).toBe('deeppcb');
    const ds = await openDataset(root);
    expect(ds.items.map((i) => [i.label, i.id])).toEqual([
      ['good', 'PCBData/group1/1/100_temp.jpg'], ['defect', 'PCBData/group1/1/100_test.jpg'],
      ['good', 'PCBData/group1/1/101_temp.jpg'], ['defect', 'PCBData/group1/1/101_test.jpg'],
    ]);
    const tested = ds.items[1]!;
    expect(tested.template).toBe(ds.items[0]!.image);
    expect(tested.boxes).toEqual([
      { x1: 1, y1: 2, x2: 11, y2: 12, defectClass: 'open' }, { x1: 20, y1: 20, x2: 30, y2: 40, defectClass: 'pin_hole' },
    ]);
    expect((await openDataset(root, { limit: 1 })).items.length).toBe(2);   // one pair
    await writeFile(join(root, 'PCBData', 'group1', '1_not', '101.txt'), '1 2 3\n');
    await expect(openDataset(root)).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_DATASET' });
  });

  it('magnetic_tile: MT_Free good, MT_<Class> defects with same-named png masks', async () => {
    const root = join(dir, 'mt');
    for (const d of ['MT_Free', 'MT_Crack']) await mkdir(join(root, d, 'Imgs'), { recursive: true });
    await writeImage(join(root, 'MT_Free', 'Imgs', 'a.jpg'), img(30, 50));
    await writeImage(join(root, 'MT_Free', 'Imgs', 'a.png'), img(30, 50, 0));
    await writeImage(join(root, 'MT_Crack', 'Imgs', 'b.jpg'), img(20, 40));
    await writeImage(join(root, 'MT_Crack', 'Imgs', 'b.png'), img(20, 40, 255));
    expect(await detectLayout(root)).toBe('magnetic_tile');
    const ds = await openDataset(root);
    expect(ds.items.map((i) => [i.id, i.label, i.defectClass, i.mask?.endsWith('b.png') ?? null]))
      .toEqual([['MT_Crack/Imgs/b.jpg', 'defect', 'crack', true], ['MT_Free/Imgs/a.jpg', 'good', null, null]]);
    await expect(openDataset(root, { split: 'test' })).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
  });

  it('unknown layouts are a coded 4xx error; --layout overrides detection', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(openDataset(empty)).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_LAYOUT_UNKNOWN', statusCode: 400 });
    await expect(openDataset(empty, { layout: 'magnetic_tile' })).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_DATASET' });
    expect(limitItems([], 3)).toEqual([]);
  });
});

// ---------------------------------------------------------------- scoring

describe('scoring with a package', () => {
  it('at the camera size it gives the station runner\'s numbers; other sizes get their own compiled session', async () => {
    const gt = JSON.parse(await readFile('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const pick = gt.images.find((i) => i.label === 'defect')!;
    const frame = await readGray(`test-images/test/${pick.file}`);
    const scorer = await PackageScorer.open(DEFAULT_MODEL);
    const runner = await ModelRunner.create({ packageDir: DEFAULT_MODEL, frame: { width: 1280, height: 1024 }, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger: logger.child({ test: 'eval' }) });
    try {
      const a = await scorer.score(frame);
      const b = await runner.infer(frame.data);
      expect(Math.abs(a.score - b.score)).toBeLessThan(1e-4);
      let worst = 0;
      for (let i = 0; i < b.map.length; i++) worst = Math.max(worst, Math.abs(a.map![i]! - b.map[i]!));
      expect(worst).toBeLessThan(1e-4);
      // half size (area by 2) and an odd size (bilinear): each its own session, same map geometry
      const half = { width: 640, height: 512, data: new Uint8Array(640 * 512) };
      for (let y = 0; y < 512; y++) for (let x = 0; x < 640; x++) half.data[y * 640 + x] = frame.data[2 * y * 1280 + 2 * x]!;
      const h = await scorer.score(half);
      const odd = await scorer.score(img(333, 277, 40));
      expect(scorer.sessionCount).toBe(3);
      expect([h.mapWidth, h.mapHeight, odd.mapWidth, odd.mapHeight]).toEqual([40, 32, 40, 32]);
      expect(Number.isFinite(h.score) && Number.isFinite(odd.score)).toBe(true);
      expect(h.score).toBeGreaterThan(scorer.threshold);   // the defect survives subsampling by 2
    } finally {
      await scorer.close();
      await runner.close();
    }
  });

  it('a taught package (with registration) scores as in the station\'s inference worker', async () => {
    const gt = JSON.parse(await readFile('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const good = await readGray(`test-images/test/${gt.images.find((i) => i.label === 'good')!.file}`);
    const bad = await readGray(`test-images/test/${gt.images.find((i) => i.label === 'defect')!.file}`);
    const dir = await mkdtemp(join(tmpdir(), 'eval-taught-'));
    try {
      const { packageDir, manifest } = await teachPackage({ good: [good], outDir: join(dir, 't', '1.0.0'), name: 't', version: '1.0.0', trainingData: 'test' });
      expect(manifest.registration).toBeDefined();
      const scorer = await PackageScorer.open(packageDir);
      const runner = await ModelRunner.create({ packageDir, frame: { width: 1280, height: 1024 }, providers: ['cpu'],
        intraOpNumThreads: 1, warmupRuns: 1, logger: logger.child({ test: 'eval' }) });
      try {
        for (const frame of [good, bad]) {
          const a = await scorer.score(frame);
          const b = await runner.infer(frame.data);
          expect(a.registered).toBe(true);
          expect(Math.abs(a.score - b.score)).toBeLessThan(1e-4);
        }
      } finally {
        await scorer.close();
        await runner.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runEval on a small fixtures subset fills every field and finds each defect region', async () => {
    const ds = await openDataset('test-images/test', { limit: 8 });
    const report = await runEval({ dataset: ds, modelDir: DEFAULT_MODEL, perImage: true });
    expect(Value.Check(EvalReport, report)).toBe(true);
    expect(report.dataset).toMatchObject({ images: 8, good: 4, defective: 4, layout: 'fixtures' });
    expect(report.per_image!.length).toBe(8);
    const c = report.confusion_matrix;
    expect(c.tp + c.fp + c.tn + c.fn).toBe(8);
    expect(report.regions.gt_defects).toBe(4);
  });
});

// ---------------------------------------------------------------- per-pair teach (DeepPCB)

const PAIR_W = 256;

/**
 * One DeepPCB-style pair under ROOT/PCBData/g/1: a board (white, dark irregular traces and pads, so
 * registration has a unique answer) and the same board with a 12x12 blob of spurious copper.
 * `blankTemplate`: a uniform template (no registration can use it); `corruptTested`: the tested
 * file is not an image. Returns the list-file line.
 */
async function writePair(root: string, id: string, n: number,
  o: { blankTemplate?: boolean; corruptTested?: boolean } = {}): Promise<string> {
  await mkdir(join(root, 'PCBData', 'g', '1'), { recursive: true });
  await mkdir(join(root, 'PCBData', 'g', '1_not'), { recursive: true });
  const W = PAIR_W;
  const board = img(W, W, 235);
  const dark = (x0: number, y0: number, w: number, h: number, im: GrayImage): void => {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) im.data[y * W + x] = 20;
  };
  for (let k = 0; k < 9; k++) dark(12 + ((k * 53 + n * 17) % 200), 10 + k * 26, 40 + ((k * 31) % 60), 6, board);
  for (let k = 0; k < 5; k++) dark(20 + k * 45, 150 + ((k * 37) % 60), 14, 14, board);
  const tested = { ...board, data: new Uint8Array(board.data) };
  const [bx, by] = n % 2 === 0 ? [180, 40] : [60, 200];
  dark(bx, by, 12, 12, tested);                              // spurious copper on bare board
  await writeImage(join(root, 'PCBData', 'g', '1', `${id}_temp.jpg`), o.blankTemplate ? img(W, W, 235) : board);
  if (o.corruptTested) await writeFile(join(root, 'PCBData', 'g', '1', `${id}_test.jpg`), 'not a jpeg at all');
  else await writeImage(join(root, 'PCBData', 'g', '1', `${id}_test.jpg`), tested);
  await writeFile(join(root, 'PCBData', 'g', '1_not', `${id}.txt`), `${bx} ${by} ${bx + 12} ${by + 12} 5\n`);
  return `g/1/${id}.jpg g/1_not/${id}.txt`;
}

describe('per-pair teach on DeepPCB-style pairs', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'eval-pairs-')); });
  let broken: Promise<{ root: string; lines: string[] }> | null = null;
  /** four pairs, two of them broken (a blank template first, then a tested file that is not an image); written once */
  const brokenPairs = (): Promise<{ root: string; lines: string[] }> => (broken ??= (async () => {
    const root = join(dir, 'broken');
    const lines = [
      await writePair(root, '300', 0, { blankTemplate: true }),   // first: the run must not stop here
      await writePair(root, '301', 1),
      await writePair(root, '302', 2, { corruptTested: true }),
      await writePair(root, '303', 3),
    ];
    await writeFile(join(root, 'subset_test.txt'), `${lines.join('\n')}\n`);
    return { root, lines };
  })());
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('teaches from each template, judges its tested image, and the added defect is the one region found', async () => {
    const root = join(dir, 'pcb');
    const lines = [await writePair(root, '200', 0), await writePair(root, '201', 1)];
    await writeFile(join(root, 'subset_test.txt'), `${lines.join('\n')}\n`);
    const ds = await openDataset(root);
    const report = await runEval({ dataset: ds, teachPerPair: true, perImage: true });
    expect(Value.Check(EvalReport, report)).toBe(true);
    expect(report.dataset).toMatchObject({ images: 2, good: 0, defective: 2, teachPerPair: true, skipped: 0 });
    expect(report.skipped).toEqual([]);
    expect(report.model.registration).toBe('applied');
    expect(report.image_auroc).toBeNull();                       // only tested images are judged
    expect(report.recall).toBe(1);
    expect(report.regions).toMatchObject({ gt_defects: 2, gt_hit: 2, false: 0 });
    expect(report.defect_region_recall).toBe(1);
    expect(report.false_regions_per_image).toBe(0);
    expect(report.regions.per_class_recall).toEqual({ spurious_copper: { recall: 1, hit: 2, total: 2 } });
    // options chosen from each template (binarised boards): full resolution, envelope, local alignment, opening
    expect(report.teach_options?.map((t) => t.pairs)).toEqual([2]);
    expect(report.teach_options![0]!.options).toMatchObject({ downscale: 1, localShiftPx: 2, openSizePx: 3 });
  });

  it('a pair that cannot be taught or read is counted in `skipped` with its code and reason, and the run goes on', async () => {
    const { root, lines } = await brokenPairs();
    const progress: string[] = [];
    const report = await runEval({
      dataset: await openDataset(root), teachPerPair: true, onProgress: (d, t) => progress.push(`${d}/${t}`),
    });
    expect(Value.Check(EvalReport, report)).toBe(true);
    expect(progress).toEqual(['1/4', '2/4', '3/4', '4/4']);
    expect(report.skipped.map((s) => [s.item, s.code])).toEqual([
      ['g/1/300', 'INSPECTOR_TEACH_NO_IMAGES'], ['g/1/302', 'INSPECTOR_EVAL_IMAGE'],
    ]);
    expect(report.skipped[0]!.reason).toContain('could be registered');
    expect(report.skipped[1]!.reason).toContain('302_test.jpg');
    // the two good pairs are judged as if alone; the skipped ones are in no metric
    expect(report.dataset).toMatchObject({ images: 2, defective: 2, skipped: 2 });
    expect(report.regions).toMatchObject({ gt_defects: 2, gt_hit: 2, false: 0 });
    // only broken pairs: nothing to report, a coded error
    await writeFile(join(root, 'broken.txt'), `${lines[0]}\n${lines[2]}\n`);
    await expect(runEval({ dataset: await openDataset(root, { split: 'broken.txt' }), teachPerPair: true }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_EMPTY' });
  });

  it('the CLI with stderr not a terminal: progress lines on stderr, the skipped pairs in the summary and the report', async () => {
    const { root } = await brokenPairs();
    const out = join(dir, 'broken.json');
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'eval', '--teach-per-pair',
      '--dataset', root, '--json', out], { cwd: resolve('.'), env: { ...process.env, INSPECTOR_LOG_LEVEL: 'error', INSPECTOR_PROGRESS_INTERVAL_MS: '1' } });
    expect(stderr).toMatch(/^eval \(pairs\): 4\/4 \(100 %\), .*ETA 0s/m);
    expect(stdout).toContain('2 skipped (INSPECTOR_TEACH_NO_IMAGES 1, INSPECTOR_EVAL_IMAGE 1) (in no metric)');
    expect(stdout).toContain('skipped g/1/300: INSPECTOR_TEACH_NO_IMAGES');
    const report = JSON.parse(await readFile(out, 'utf8')) as EvalReport;
    expect(report.skipped.length).toBe(2);
  });

  it('a model package: an image that does not decode is skipped, the others are judged', async () => {
    const root = join(dir, 'folder-broken');
    await mkdir(join(root, 'good'), { recursive: true });
    await mkdir(join(root, 'defect', 'scratch'), { recursive: true });
    await symlink(resolve('test-images/test/parts/00000.png'), join(root, 'good', 'a.png'));
    await symlink(resolve('test-images/test/parts/00002.png'), join(root, 'defect', 'scratch', 'b.png'));
    await writeFile(join(root, 'good', 'truncated.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
    const report = await runEval({ dataset: await openDataset(root), modelDir: DEFAULT_MODEL });
    expect(Value.Check(EvalReport, report)).toBe(true);
    expect(report.skipped).toEqual([expect.objectContaining({ item: 'good/truncated.png', code: 'INSPECTOR_EVAL_IMAGE' })]);
    expect(report.dataset).toMatchObject({ images: 2, good: 1, defective: 1, skipped: 1 });
  });

  it('refuses per-pair teach on a dataset without pairs', async () => {
    const ds = await openDataset('test-images/test', { limit: 2 });
    await expect(runEval({ dataset: ds, teachPerPair: true })).rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
  });
});

// ---------------------------------------------------------------- CLI end to end

describe('inspector eval (CLI) on test-images/test with the default model', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'eval-cli-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('writes every field, and its figures agree with the manifest\'s recorded test metrics', async () => {
    const out = join(dir, 'report.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'eval', '--model', DEFAULT_MODEL,
      '--dataset', 'test-images/test', '--json', out, '--no-progress'], { cwd: resolve('.'), env: { ...process.env, INSPECTOR_LOG_LEVEL: 'warn' } });
    expect(stdout).toContain('image_auroc');
    const report = JSON.parse(await readFile(out, 'utf8')) as EvalReport;
    expect(Value.Check(EvalReport, report)).toBe(true);
    for (const k of ['image_auroc', 'precision', 'recall', 'f1', 'confusion_matrix', 'per_class_recall', 'latency_ms',
      'defect_region_recall', 'false_regions_per_image']) expect(report).toHaveProperty(k);
    expect(report.latency_ms.p99).toBeGreaterThanOrEqual(report.latency_ms.p50);
    const manifest = JSON.parse(await readFile(join(DEFAULT_MODEL, 'manifest.json'), 'utf8')) as { training: { metrics: Record<string, number> } };
    const m = manifest.training.metrics;
    expect(report.dataset.images).toBe(240);
    expect(report.accuracy).toBeCloseTo(m.test_accuracy!, 6);
    expect(report.recall).toBeCloseTo(m.test_recall!, 6);
    expect(report.false_reject_rate).toBeCloseTo(m.test_false_reject_rate!, 6);
    expect(report.image_auroc).toBeCloseTo(m.test_image_auroc!, 6);
    for (const [cls, r] of Object.entries(report.per_class_recall)) expect(r.recall).toBeCloseTo(m[`test_recall_${cls}`]!, 6);
    // the manifest's localisation figure is "hottest cell within 1 cell": here every defect box is overlapped
    expect(report.defect_region_recall).toBeGreaterThanOrEqual(m.test_localisation_hit_rate! - 0.05);
  });

  it('bad input exits non-zero with a coded error', async () => {
    const err = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'eval', '--model', DEFAULT_MODEL,
      '--dataset', dir, '--json', join(dir, 'x.json')], { cwd: resolve('.') }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('INSPECTOR_EVAL_LAYOUT_UNKNOWN');
  });
});

// ---------------------------------------------------------------- multi-class packages: the station's per-class rule

describe('eval decides multi-class packages per class, as the station does', () => {
  it('a class threshold above a dark defect\'s score lets it pass; without it the same images are rejects', async () => {
    const { writeSegmentationPackage, classFrame, CLASS_FRAME } = await import('./helpers/class-packages.js');
    const dir = await mkdtemp(join(tmpdir(), 'eval-classes-'));
    try {
      // Folder layout: 3 good mid-grey frames, 3 with a dark cell, 3 with a bright cell (32x32)
      const put = async (sub: string, name: string, f: Uint8Array): Promise<void> => {
        await mkdir(join(dir, 'test', sub), { recursive: true });
        await sharp(Buffer.from(f), { raw: { width: CLASS_FRAME, height: CLASS_FRAME, channels: 1 } }).png().toFile(join(dir, 'test', sub, name));
      };
      for (let i = 0; i < 3; i++) {
        await put('good', `g${i}.png`, classFrame());
        await put('defect/dark', `d${i}.png`, classFrame({ [i * 5]: 0 }));
        await put('defect/bright', `b${i}.png`, classFrame({ [i * 5 + 1]: 255 }));
      }
      const pkg = writeSegmentationPackage(join(dir, 'pkg'));
      const ds = await openDataset(dir, { split: 'test' });
      const plain = await runEval({ dataset: ds, modelDir: pkg });
      expect(plain.confusion_matrix).toMatchObject({ tp: 6, fn: 0, tn: 3, fp: 0 });
      // the dark class's threshold above its score (~0.98): dark defects pass, bright ones are still caught
      const manifestPath = join(pkg, 'manifest.json');
      const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
      (m.decision as { classThresholds?: Record<string, number> }).classThresholds = { dark: 0.99 };
      await writeFile(manifestPath, JSON.stringify(m));
      const perClass = await runEval({ dataset: ds, modelDir: pkg });
      expect(perClass.confusion_matrix).toMatchObject({ tp: 3, fn: 3, tn: 3, fp: 0 });
      expect(perClass.per_class_recall.dark!.recall).toBe(0);
      expect(perClass.per_class_recall.bright!.recall).toBe(1);
      // the image score alone (0.5) would still reject every defect: the rule is what changed the outcome
      expect(perClass.image_auroc).toBe(plain.image_auroc);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
