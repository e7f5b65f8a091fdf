/**
 * `inspector retune`: a package's threshold chosen on labelled held-out parts
 * for a wanted recall, written as a new version (eval/retune-threshold.ts),
 * with the default model on the synthetic test split; and its refusals.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openDataset } from '../inspector/eval/datasets.js';
import { retuneThreshold } from '../inspector/eval/retune-threshold.js';
import { runEval } from '../inspector/eval/run-eval.js';
import { loadModelPackage } from '../inspector/inference/model-package.js';
import { writeSegmentationPackage } from './helpers/class-packages.js';

const run = promisify(execFile);
const DEFAULT_MODEL = 'models/default/1.0.0';
const TEST_SPLIT = 'test-images/test';

describe('retune: a threshold chosen for a wanted recall, as a new package version', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'retune-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('takes the ceil(r x defective)-th highest defect score, writes it into a copy, and the copy judges by it', async () => {
    const dataset = await openDataset(TEST_SPLIT);
    const before = await runEval({ dataset, modelDir: DEFAULT_MODEL, perImage: true });
    const defectScores = before.per_image!.filter((r) => r.label === 'defect').map((r) => r.score).sort((a, b) => b - a);
    const want = defectScores[Math.ceil(0.5 * defectScores.length) - 1]!;
    expect(before.recall).toBe(1); // the default model at its own 0.5 finds every defect of the split

    const out = join(dir, 'default-1.0.1');
    const r = await retuneThreshold({ modelDir: DEFAULT_MODEL, dataset, recall: 0.5, version: '1.0.1', outDir: out });
    expect(r.point.threshold).toBe(want);
    expect(r.previousThreshold).toBe(0.5);
    expect(r.after.threshold).toBe(want);
    // the retuned package judges by the new threshold: about half the defects, as the operating point said
    expect(r.after.recall).toBeCloseTo(r.point.recall, 5); // the report rounds to 6 decimals
    expect(r.after.recall!).toBeGreaterThanOrEqual(0.5);
    expect(r.after.recall!).toBeLessThan(0.6);

    const original = JSON.parse(await readFile(join(DEFAULT_MODEL, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    const retuned = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      version: string; decision: { threshold: number }; training: { threshold: { from: string; previous: number; targetRecall: number } };
    } & Record<string, unknown>;
    expect(retuned.version).toBe('1.0.1');
    expect(retuned.decision.threshold).toBe(want);
    expect(retuned.training.threshold).toMatchObject({ from: `default@${original.version as string}`, previous: 0.5, targetRecall: 0.5 });
    for (const k of ['input', 'outputs', 'sha256', 'name']) expect(retuned[k]).toEqual(original[k]); // the rest as it was
    expect(Buffer.compare(await readFile(join(out, 'model.onnx')), await readFile(join(DEFAULT_MODEL, 'model.onnx')))).toBe(0);
    expect((await loadModelPackage(out)).manifest.decision.threshold).toBe(want);
  });

  it('refuses an existing folder, the same version, one-sided data and a package decided per class, with codes', async () => {
    const dataset = await openDataset(TEST_SPLIT);
    const base = { modelDir: DEFAULT_MODEL, dataset, recall: 0.9 };
    await mkdir(join(dir, 'taken'));
    await expect(retuneThreshold({ ...base, version: '1.0.2', outDir: join(dir, 'taken') }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
    await expect(retuneThreshold({ ...base, version: '1.0.0', outDir: join(dir, 'same') }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
    await expect(retuneThreshold({ ...base, recall: 0, version: '1.0.2', outDir: join(dir, 'zero') }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
    const multi = writeSegmentationPackage(join(dir, 'multi'));
    await expect(retuneThreshold({ ...base, modelDir: multi, version: '1.0.2', outDir: join(dir, 'multi-2') }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_OPTION' });
    // good parts only: a Folder tree of the split's good images
    const goods = join(dir, 'goods');
    await mkdir(join(goods, 'good'), { recursive: true });
    const goodImages = dataset.items.filter((i) => i.label === 'good').slice(0, 4);
    for (const [k, item] of goodImages.entries()) await symlink(resolve(item.image), join(goods, 'good', `g${k}.png`));
    await expect(retuneThreshold({ ...base, dataset: await openDataset(goods, { layout: 'folder' }), version: '1.0.2', outDir: join(dir, 'g2') }))
      .rejects.toMatchObject({ code: 'INSPECTOR_EVAL_EMPTY' });
    // nothing was written for any refusal
    expect((await readdir(dir)).sort()).toEqual(['default-1.0.1', 'goods', 'multi', 'taken']);
  });

  it('the CLI prints the figures before and after and writes the package', async () => {
    const out = join(dir, 'cli');
    const { stdout } = await run('npx', ['tsx', 'inspector/cli/main.ts', 'retune', '--model', DEFAULT_MODEL, '--dataset', TEST_SPLIT,
      '--recall', '0.9', '--version', '1.1.0', '--out', out], { cwd: resolve('.'), timeout: 120_000 });
    expect(stdout).toMatch(/threshold 0\.5000: recall 1\.0000/);
    expect(stdout).toContain(`wrote ${out}`);
    expect((await loadModelPackage(out)).manifest.version).toBe('1.1.0');
  });
});
