/**
 * Evaluation's dataset readers on tiny trees in each layout (folder, MVTec AD, DeepPCB,
 * magnetic tile). Scoring and `inspector eval`: eval-scoring.test.ts; per-pair teach:
 * eval-pairs.test.ts; the metrics: eval-metrics.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectLayout, limitItems, openDataset } from '../inspector/eval/datasets.js';
import { img, writeImage } from './helpers/eval-images.js';

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
