/**
 * Evaluation with per-pair teach (`--teach-per-pair`) on DeepPCB-style pairs: a package
 * taught from each template judges its tested image; pairs that cannot be taught or read
 * are skipped with their code and the run goes on. The dataset readers:
 * eval-datasets.test.ts; scoring and `inspector eval`: eval-scoring.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import type { GrayImage } from '../inspector/core/gray-image.js';
import { openDataset } from '../inspector/eval/datasets.js';
import { EvalReport } from '../inspector/eval/report-schema.js';
import { runEval } from '../inspector/eval/run-eval.js';
import { DEFAULT_MODEL, img, writeImage } from './helpers/eval-images.js';

const run = promisify(execFile);

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
