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
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { readGray } from '../inspector/core/gray-image.js';
import { logger } from '../inspector/core/logger.js';
import { loadModelPackage, sha256Hex } from '../inspector/inference/model-package.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { openDataset } from '../inspector/eval/datasets.js';
import { PackageScorer } from '../inspector/eval/package-scorer.js';
import { FRAME_INPUT_NAME, compileDeployedModel, planPreprocessing } from '../inspector/inference/preprocess-graph.js';
import { GraphBuilder, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';

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

  it.skipIf(noTorch !== null)(`letterbox resize, crops, zoom and --ensemble: torch's inputs and scores equal the appliance's on frames of any aspect${noTorch ? ` (${noTorch})` : ''}`, async () => {
    // crops of the fixtures with very different aspect ratios (and their masks, cropped alike)
    const gt = JSON.parse(await readFile('test-images/train/ground-truth.json', 'utf8')) as {
      images: Array<{ file: string; label: string; defect: string | null; mask: string | null }>;
    };
    const data = join(dir, 'lb-export');
    const boxes = [{ left: 0, top: 0, width: 1280, height: 1024 }, { left: 100, top: 50, width: 300, height: 900 },
      { left: 0, top: 200, width: 1100, height: 333 }];
    const good = gt.images.filter((i) => i.label === 'good').slice(0, 3);
    const bad = gt.images.filter((i) => i.label === 'defect').slice(0, 3);
    await mkdir(join(data, 'good'), { recursive: true });
    await mkdir(join(data, 'defect', 'd'), { recursive: true });
    await mkdir(join(data, 'masks', 'd'), { recursive: true });
    for (const [k, g] of good.entries()) {
      await sharp(resolve('test-images/train', g.file)).extract(boxes[k]!).png().toFile(join(data, 'good', `g${k}.png`));
    }
    for (const [k, d] of bad.entries()) {
      await sharp(resolve('test-images/train', d.file)).extract(boxes[k]!).png().toFile(join(data, 'defect', 'd', `d${k}.png`));
      await sharp(resolve('test-images/train', d.mask!)).extract(boxes[k]!).png().toFile(join(data, 'masks', 'd', `d${k}.png`));
    }
    const out = join(dir, 'models', 'lb', '1.0.0');
    const scores = join(dir, 'lb-scores.json');
    await run(PYTHON, ['models/training/train_folder.py', '--data', data, '--out', out, '--name', 'lb', '--version', '1.0.0',
      '--epochs', '1', '--size', '64', '--widths', '4,8,8', '--batch', '4', '--threads', '1', '--resize', 'letterbox',
      '--crop-size', '48', '--zoom', '0.2', '--rot90', '--paste', '0.5', '--paste-move', '0.5', '--balance-paste', '--tta', '8', '--scores-out', scores,
      '--save-state', join(dir, 'lb.pt')], { cwd: resolve('.'), timeout: 120_000 });

    const pkg = await loadModelPackage(out);
    expect(pkg.manifest.input.resize).toBe('letterbox');
    expect(pkg.manifest.training.command).toContain('--resize letterbox --crop-size 48 --zoom 0.2 --rot90 --paste 0.5 --paste-move 0.5 --balance-paste');
    // the plan keeps the aspect: 300x900 → 21x64 centred (left pad 21), 1100x333 → 64x19 (top pad 22)
    expect(planPreprocessing(pkg.manifest, { width: 300, height: 900 }).resize)
      .toEqual({ kind: 'letterbox', resizedWidth: 21, resizedHeight: 64, top: 0, left: 21 });
    expect(planPreprocessing(pkg.manifest, { width: 1100, height: 333 }).resize)
      .toEqual({ kind: 'letterbox', resizedWidth: 64, resizedHeight: 19, top: 22, left: 0 });
    const trained = JSON.parse(await readFile(scores, 'utf8')) as Record<string, number>;
    const scorer = await PackageScorer.open(out);
    try {
      const ds = await openDataset(data, { layout: 'folder' });
      expect(ds.items.length).toBe(6);
      const seen = new Set<string>();
      for (const item of ds.items) {
        const img = await readGray(item.image);
        seen.add(`${img.width}x${img.height}`);
        const s = await scorer.score(img);
        expect(trained[item.id]).toBeDefined();
        expect(Math.abs(s.score - trained[item.id]!)).toBeLessThan(1e-4);
      }
      expect(seen.size).toBe(3);
      // scores differ between images (a constant output would match trivially)
      expect(new Set(Object.values(trained).map((v) => v.toFixed(5))).size).toBeGreaterThan(1);

      // the model input itself: torch's preprocess() = the compiled graph in front of an identity model, every value
      const g = new GraphBuilder('identity');
      g.input('image', 'float32', [1, 1, 64, 64]);
      g.output('out', 'float32', [1, 1, 64, 64]);
      g.node('Identity', ['image'], ['out']);
      const identity = encodeModel(createModel(g.build(), { opset: 13 }));
      const paths = ds.items.map((i) => i.image);
      const py = await run(PYTHON, ['-c', 'import json, sys; sys.path.insert(0, "models/training"); '
        + 'from train_folder import decode, preprocess; '
        + 'print(json.dumps([preprocess(i, 64, "letterbox").flatten().tolist() for i in decode(json.loads(sys.argv[1]))]))',
      JSON.stringify(paths)], { cwd: resolve('.'), timeout: 60_000, maxBuffer: 64 << 20 });
      const torchInputs = JSON.parse(py.stdout) as number[][];
      for (const [k, path] of paths.entries()) {
        const img = await readGray(path);
        const session = await ort.InferenceSession.create(
          compileDeployedModel(identity, pkg.manifest, { width: img.width, height: img.height }));
        try {
          const res = await session.run({ [FRAME_INPUT_NAME]: new ort.Tensor('uint8', img.data, [1, 1, img.height, img.width]) });
          const got = res.out!.data as Float32Array;
          expect(got.length).toBe(64 * 64);
          let worst = 0;
          for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - torchInputs[k]![i]!));
          expect(worst).toBeLessThan(1e-4);
        } finally {
          await session.release();
        }
      }
    } finally {
      await scorer.close();
    }

    // --ensemble: a second net (seed 2) and the mean of both as one model.onnx; torch's scores = the appliance's,
    // and each ensemble score is the mean of the members' scores
    const common = ['--data', data, '--version', '1.0.0', '--size', '64', '--widths', '4,8,8', '--batch', '4',
      '--threads', '1', '--resize', 'letterbox', '--tta', '8'];
    await run(PYTHON, ['models/training/train_folder.py', ...common, '--out', join(dir, 'models', 'lb2', '1.0.0'), '--name', 'lb2',
      '--epochs', '1', '--seed', '2', '--save-state', join(dir, 'lb2.pt'), '--scores-out', join(dir, 'lb2-scores.json')],
    { cwd: resolve('.'), timeout: 120_000 });
    const ens = join(dir, 'models', 'ens', '1.0.0');
    await run(PYTHON, ['models/training/train_folder.py', ...common, '--out', ens, '--name', 'ens',
      '--ensemble', `${join(dir, 'lb.pt')},${join(dir, 'lb2.pt')}`, '--scores-out', join(dir, 'ens-scores.json')],
    { cwd: resolve('.'), timeout: 120_000 });
    const second = JSON.parse(await readFile(join(dir, 'lb2-scores.json'), 'utf8')) as Record<string, number>;
    const mean = JSON.parse(await readFile(join(dir, 'ens-scores.json'), 'utf8')) as Record<string, number>;
    const ensScorer = await PackageScorer.open(ens);
    try {
      const ds = await openDataset(data, { layout: 'folder' });
      let differ = 0;
      for (const item of ds.items) {
        expect(Math.abs(mean[item.id]! - (trained[item.id]! + second[item.id]!) / 2)).toBeLessThan(1e-5);
        if (Math.abs(trained[item.id]! - second[item.id]!) > 1e-4) differ++;
        expect(Math.abs((await ensScorer.score(await readGray(item.image))).score - mean[item.id]!)).toBeLessThan(1e-4);
      }
      expect(differ).toBeGreaterThan(0);
    } finally {
      await ensScorer.close();
    }
  });

  it.skipIf(noTorch !== null)(`--paste: a good image gets a donor's masked defect at its own level, labelled and targeted as the donor${noTorch ? ` (${noTorch})` : ''}`, async () => {
    // two goods at level 1, two defectives; one donor at level 5 with a 4x4 defect of level 7 (2 above its surroundings)
    const script = `
import json, sys, torch
sys.path.insert(0, 'models/training')
from augmentation import paste_defects
from training_loop import loss_weights
S, C = 32, 4
x = torch.zeros(4, 1, S, S); x[:2] = 1.0
y = torch.tensor([0., 0., 1., 1.]); has_mask = torch.tensor([True, True, False, True]); t = torch.zeros(4, 1, C, C)
dx = torch.full((1, 1, S, S), 5.0); dm = torch.zeros(1, 1, S, S); dm[..., 8:12, 4:8] = 1; dx[..., 8:12, 4:8] = 7.0
dt = torch.zeros(1, 1, C, C); dt[..., 1, 0] = 1
xb, tb, yb, sel = paste_defects(x, t, y, has_mask, torch.Generator().manual_seed(3), (dx, dm, dt), 1.0, True)
none = paste_defects(x, t, y, has_mask, torch.Generator().manual_seed(3), (dx, dm, dt), 0.0, True)
two = paste_defects(x, t, y, has_mask, torch.Generator().manual_seed(3), (dx, dm, dt), 2.0, True)
new = xb[4:, 0]
print(json.dumps({'n': xb.shape[0], 'y': yb.tolist(), 'sel': sel.tolist(), 'same': bool(torch.equal(xb[:4], x)),
  'peak': [float(v.max()) for v in new], 'far': [float(v[v < 1.5].max()) for v in new],
  'changed': [int(((v - 1).abs() > 1e-6).sum()) for v in new], 'at3': [int((v == 3).sum()) for v in new],
  'cells': [tb[i, 0].nonzero().tolist() for i in (4, 5)],
  'hot': [[int(c) // 8 for c in (v == 3).nonzero()[0].tolist()] for v in new], 'none': none[0].shape[0],
  'two': [two[0].shape[0], two[2].tolist(), [float(v.max()) for v in two[0][4:, 0]]],
  'posWeight': [float(loss_weights(t, y, has_mask)[0]), float(loss_weights(t, y, has_mask, 2.0)[0])]}))
`;
    const { stdout } = await run(PYTHON, ['-c', script], { cwd: resolve('.'), timeout: 60_000 });
    const r = JSON.parse(stdout) as { n: number; y: number[]; sel: boolean[]; same: boolean; peak: number[]; far: number[];
      changed: number[]; at3: number[]; cells: number[][][]; hot: number[][]; none: number; two: [number, number[], number[]];
      posWeight: [number, number] };
    expect(r.posWeight[0]).toBeCloseTo(1, 6); // 2 good / 2 defective
    expect(r.posWeight[1]).toBeCloseTo(2 / 6, 6); // --balance-paste with p = 2: 2 good / (2 + 2 x 2) defective as seen
    expect(r.none).toBe(4); // p = 0: the batch as it was
    expect(r.two[0]).toBe(8); // p = 2: two pasted examples per good image
    expect(r.two[1]).toEqual([0, 0, 1, 1, 1, 1, 1, 1]);
    for (const peak of r.two[2]) expect(peak).toBeCloseTo(3, 5);
    expect(r.n).toBe(6); // p = 1: one pasted example per good image, appended
    expect(r.y).toEqual([0, 0, 1, 1, 1, 1]);
    expect(r.sel).toEqual([true, true, false, true, true, true]);
    expect(r.same).toBe(true); // the batch's own images untouched
    for (let i = 0; i < 2; i++) {
      expect(r.peak[i]).toBeCloseTo(3, 5); // 7 - 5 + 1: the defect's contrast to its surroundings, at the good image's level
      expect(r.at3[i]).toBe(16); // the whole 4x4 defect
      expect(r.far[i]).toBeCloseTo(1, 6);
      expect(r.changed[i]).toBe(16); // the feathered edge blends donor surroundings shifted to the good's level: unchanged
      expect(r.cells[i]).toHaveLength(1); // the donor's target, flipped/transposed with it: one cell, under the defect
      expect(r.cells[i]![0]).toEqual(r.hot[i]);
    }
  });

  it.skipIf(noTorch !== null)(`--paste-move: a defect away from the borders lands at random places (target moved with it), an edge defect stays${noTorch ? ` (${noTorch})` : ''}`, async () => {
    // donor 0: a 4x4 defect in the middle; donor 1: a 4x4 defect on the top border. 300 seeded pastes with move 1.0
    const script = (move: number): string => `
import json, sys, torch
sys.path.insert(0, 'models/training')
from augmentation import paste_defects
S, C = 64, 8
x = torch.zeros(2, 1, S, S); y = torch.tensor([0., 1.]); has_mask = torch.tensor([True, True]); t = torch.zeros(2, 1, C, C)
dx = torch.full((2, 1, S, S), 5.0); dm = torch.zeros(2, 1, S, S); dt = torch.zeros(2, 1, C, C)
dm[0, ..., 24:28, 32:36] = 1; dx[0, ..., 24:28, 32:36] = 7; dt[0, ..., 3, 4] = 1
dm[1, ..., 0:4, 40:44] = 1; dx[1, ..., 0:4, 40:44] = 7; dt[1, ..., 0, 5] = 1
out = {'inner': [], 'edge': [], 'targetOk': True}
for s in range(300):
    xb, tb, yb, sel = paste_defects(x, t, y, has_mask, torch.Generator().manual_seed(s), (dx, dm, dt), 1.0, False, ${move})
    hot = (xb[2, 0] >= 1.99).nonzero()
    r0, c0, r1, c1 = int(hot[:, 0].min()), int(hot[:, 1].min()), int(hot[:, 0].max()), int(hot[:, 1].max())
    out['targetOk'] = out['targetOk'] and tb[2, 0].nonzero().tolist() == [[r0 // 8, c0 // 8]]
    out['edge' if r0 < 4 or r1 > S - 5 else 'inner'].append([r0, c0, r1, c1])
print(json.dumps(out))
`;
    for (const move of [1.0, 0.0]) {
      const { stdout } = await run(PYTHON, ['-c', script(move)], { cwd: resolve('.'), timeout: 60_000 });
      const r = JSON.parse(stdout) as { inner: number[][]; edge: number[][]; targetOk: boolean };
      expect(r.targetOk).toBe(true); // the cell target moved with the defect, whole cells
      const places = new Set(r.inner.map((b) => `${b[0]},${b[1]}`));
      if (move > 0) {
        expect(places.size).toBeGreaterThan(30); // many places, not the donor's four (its flips)
        for (const [r0, c0, r1, c1] of r.inner) { // 16 px (MOVE_MARGIN) from every border
          expect(Math.min(r0!, c0!)).toBeGreaterThanOrEqual(16);
          expect(Math.max(r1!, c1!)).toBeLessThan(48);
        }
      } else {
        expect(places.size).toBeLessThanOrEqual(4); // move 0: the donor's place, flipped
      }
      expect(r.edge.length).toBeGreaterThan(100);
      for (const [r0, , r1] of r.edge) expect(r0! <= 1 || r1! >= 62).toBe(true); // the edge defect stays on the border
    }
  });
  it.skipIf(noTorch !== null)(`--teacher: the soft image target is (1 - w) x label + w x the teachers' mean score over their views, at their own size${noTorch ? ` (${noTorch})` : ''}`, async () => {
    // two random teachers at size 32 (one asymmetric image), a student batch at size 24: TeacherScores resizes to 32,
    // and its score is the mean over both nets and the 8 views; with weight 0 the target is the label
    const script = `
import json, sys, torch, torch.nn.functional as F
sys.path.insert(0, 'models/training')
from segmenter import Net, _views
from distillation import TeacherScores
torch.manual_seed(5)
nets = [Net((4, 8, 8)).eval(), Net((4, 8, 8)).eval()]
for n in nets:
    n.cls.weight.data *= 30  # a fresh head scores every image about alike: spread the scores so views differ
xb = torch.randn(3, 1, 24, 24); xb[0, 0, :6, :] += 3.0
yb = torch.tensor([1., 0., 1.])
ts = TeacherScores(nets, 32, 8, 0.7)
with torch.no_grad():
    big = F.interpolate(xb, size=(32, 32), mode='bilinear', align_corners=False)
    by_hand = sum(torch.sigmoid(n(v)[1]) for n in nets for v in _views(big, 8)) / 16
    one_view = sum(torch.sigmoid(n(big)[1]) for n in nets) / 2
print(json.dumps({'target': ts.target(xb, yb).tolist(), 'byHand': ((0.3 * yb) + 0.7 * by_hand).tolist(),
  'oneView': (0.3 * yb + 0.7 * one_view).tolist(), 'w0': TeacherScores(nets, 32, 8, 0.0).target(xb, yb).tolist()}))
`;
    const { stdout } = await run(PYTHON, ['-c', script], { cwd: resolve('.'), timeout: 60_000 });
    const r = JSON.parse(stdout) as { target: number[]; byHand: number[]; oneView: number[]; w0: number[] };
    for (let i = 0; i < 3; i++) expect(r.target[i]).toBeCloseTo(r.byHand[i]!, 5);
    expect(r.w0).toEqual([1, 0, 1]);
    // the views matter (the asymmetric image): the 8-view mean is not the plain view's score
    expect(Math.max(...r.target.map((v, i) => Math.abs(v - r.oneView[i]!)))).toBeGreaterThan(1e-4);
  });
  it.skipIf(noTorch !== null)(`--consistency: both views trained on the target, plus w x their squared logit difference; the view is drawn from the run's generator${noTorch ? ` (${noTorch})` : ''}`, async () => {
    const script = `
import json, sys, torch, torch.nn.functional as F
sys.path.insert(0, 'models/training')
from segmenter import Net, _views
from consistency import image_loss
torch.manual_seed(3)
net = Net((4, 8, 8)).eval()
net.cls.weight.data *= 300  # a fresh net scores the views of an image almost alike: spread them
xb = torch.randn(4, 1, 32, 32); xb[:, 0, :8, :12] += 3.0
yb = torch.tensor([1., 0., 1., 0.]); pw = torch.tensor(2.0)
with torch.no_grad():
    logit = net(xb)[1]
    gen = torch.Generator().manual_seed(9)
    k = int(torch.randint(1, 8, (1,), generator=torch.Generator().manual_seed(9)))
    logit2 = net(_views(xb, 8)[k])[1]
    bce = lambda l: F.binary_cross_entropy_with_logits(l, yb, pos_weight=pw)
    by_hand = 0.5 * (bce(logit) + bce(logit2)) + 0.25 * torch.mean((logit - logit2) ** 2)
    got = image_loss(net, xb, logit, yb, pw, 0.25, gen)
    got0 = image_loss(net, xb, logit, yb, pw, 0.0, torch.Generator().manual_seed(9))
print(json.dumps({'k': k, 'got': float(got), 'byHand': float(by_hand), 'w0': float(got0),
  'meanBce': float(0.5 * (bce(logit) + bce(logit2))), 'diff': float(torch.mean((logit - logit2) ** 2))}))
`;
    const { stdout } = await run(PYTHON, ['-c', script], { cwd: resolve('.'), timeout: 60_000 });
    const r = JSON.parse(stdout) as { k: number; got: number; byHand: number; w0: number; meanBce: number; diff: number };
    expect(r.k).toBeGreaterThanOrEqual(1); // never the identity view
    expect(r.got).toBeCloseTo(r.byHand, 5);
    expect(r.w0).toBeCloseTo(r.meanBce, 5);
    expect(r.diff).toBeGreaterThan(1e-3); // the views disagree, so the term counts
  });
});
