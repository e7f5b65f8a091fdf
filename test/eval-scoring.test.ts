/**
 * Evaluation with a model package: scoring at arbitrary frame sizes (the same numbers as
 * the station's runner), `inspector eval` end to end on the synthetic test split with the
 * default model, and the station's per-class rule for multi-class packages. The dataset
 * readers: eval-datasets.test.ts; per-pair teach: eval-pairs.test.ts; the metrics:
 * eval-metrics.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Value } from '@sinclair/typebox/value';
import { readGray } from '../inspector/core/gray-image.js';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { openDataset } from '../inspector/eval/datasets.js';
import { PackageScorer } from '../inspector/eval/package-scorer.js';
import { EvalReport } from '../inspector/eval/report-schema.js';
import { runEval } from '../inspector/eval/run-eval.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { teachPackage } from '../inspector/teach/teach-package.js';
import { DEFAULT_MODEL, img } from './helpers/eval-images.js';

const run = promisify(execFile);

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
