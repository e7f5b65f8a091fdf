/**
 * The reference trainer (models/training/train_folder.py, Debian's
 * /usr/bin/python3 + python3-torch): one epoch on a tiny Folder dataset built
 * from test-images/train, then the written package is loaded and run the way
 * the appliance does, and its scores match the trainer's own.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readGray } from '../inspector/core/gray-image.js';
import { logger } from '../inspector/core/logger.js';
import { loadModelPackage, sha256Hex } from '../inspector/inference/model-package.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { openDataset } from '../inspector/eval/datasets.js';
import { PackageScorer } from '../inspector/eval/package-scorer.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const torchCheck = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' });
const noTorch = torchCheck.status !== 0
  ? `skipped: ${PYTHON} cannot import torch/onnx (${(torchCheck.error?.message ?? torchCheck.stderr ?? '').trim().split('\n').pop()})`
  : null;

describe('reference trainer (train_folder.py)', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'trainer-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it.skipIf(noTorch !== null)(`trains one epoch on a tiny Folder export and writes a complete, loadable v2 package${noTorch ? ` (${noTorch})` : ''}`, async () => {
    // the Folder layout an export writes: good/, defect/<class>/, masks/<class>/ (links to the fixtures)
    const gt = JSON.parse(await readFile('test-images/train/ground-truth.json', 'utf8')) as {
      images: Array<{ file: string; label: string; defect: string | null; mask: string | null }>;
    };
    const data = join(dir, 'export');
    const good = gt.images.filter((i) => i.label === 'good').slice(0, 3);
    const bad = gt.images.filter((i) => i.label === 'defect').slice(0, 3);
    await mkdir(join(data, 'good'), { recursive: true });
    for (const g of good) await symlink(resolve('test-images/train', g.file), join(data, 'good', basename(g.file)));
    for (const d of bad) {
      await mkdir(join(data, 'defect', d.defect!), { recursive: true });
      await mkdir(join(data, 'masks', d.defect!), { recursive: true });
      await symlink(resolve('test-images/train', d.file), join(data, 'defect', d.defect!, basename(d.file)));
      await symlink(resolve('test-images/train', d.mask!), join(data, 'masks', d.defect!, basename(d.file)));
    }
    const out = join(dir, 'models', 'tiny', '1.0.0');
    const scores = join(dir, 'scores.json');
    const { stdout } = await run(PYTHON, ['models/training/train_folder.py', '--data', data, '--out', out, '--name', 'tiny',
      '--version', '1.0.0', '--epochs', '1', '--size', '64', '--widths', '4,8,8', '--batch', '4', '--threads', '1',
      '--scores-out', scores], { cwd: resolve('.'), timeout: 120_000 });
    expect(stdout).toContain('epoch 1/1');

    // the appliance's own checks: schema, sha256, graph contract
    const pkg = await loadModelPackage(out);
    const m = pkg.manifest;
    expect(m.schemaVersion).toBe(2);
    expect(m.outputs.kind).toBe('segmentation');
    expect(m.input).toMatchObject({ shape: [1, 1, 64, 64], resize: 'linear', colour: 'gray', normalisation: { mean: [0.5], std: [0.25] } });
    expect(m.outputs.map?.shape).toEqual([1, 1, 8, 8]);
    expect(m.sha256).toBe(sha256Hex(pkg.modelBytes));
    expect(m.training.command).toContain('models/training/train_folder.py');
    expect(m.training.command).toContain('--epochs 1');

    // run it as the station does (compiled preprocessing, inference worker) on a full camera frame
    const frame = await readGray(resolve('test-images/train', bad[0]!.file));
    const runner = await ModelRunner.create({ packageDir: out, frame: { width: frame.width, height: frame.height }, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger: logger.child({ test: 'trainer' }) });
    const scorer = await PackageScorer.open(out);
    try {
      const r = await runner.infer(frame.data);
      expect(r.score).toBeGreaterThanOrEqual(0);
      expect(r.score).toBeLessThanOrEqual(1);
      expect([r.mapWidth, r.mapHeight]).toEqual([8, 8]);
      // torch's preprocessing in the trainer = the appliance's compiled one: same score per image
      const trained = JSON.parse(await readFile(scores, 'utf8')) as Record<string, number>;
      const ds = await openDataset(data, { layout: 'folder' });
      expect(ds.items.length).toBe(6);
      for (const item of ds.items) {
        const s = await scorer.score(await readGray(item.image));
        expect(trained[item.id]).toBeDefined();
        expect(Math.abs(s.score - trained[item.id]!)).toBeLessThan(1e-4);
      }
      const same = ds.items.find((i) => i.image.endsWith(basename(bad[0]!.file)) && i.label === 'defect')!;
      expect(Math.abs(r.score - trained[same.id]!)).toBeLessThan(1e-4);
    } finally {
      await runner.close();
      await scorer.close();
    }
  });
});
