/**
 * Open a dataset in any supported layout, detected from what is on disk or
 * named with `layout`:
 *
 *   fixtures        DIR/ground-truth.json (the synthetic test-images splits)
 *   deeppcb         DIR/PCBData/ or a DeepPCB list file (subset_test.txt, test.txt)
 *   magnetic_tile   DIR/MT_<Class>/Imgs/
 *   folder          DIR/good/, DIR/defect/<class>/ (MVTec: DIR/<class>/ + ground_truth/)
 *
 * `split` picks DIR/<split> for the folder layout (a Folder export or MVTec
 * category with train/ and test/), the list file for DeepPCB; it is refused
 * for layouts that have no splits. `limit` keeps the first N items after an
 * even interleave of good and defective ones, so a short run still sees both
 * (DeepPCB: the first N pairs).
 */
import { join, resolve } from 'node:path';
import { readdir } from 'node:fs/promises';
import { EvalEmptyError, EvalLayoutUnknownError, EvalOptionError } from './errors.js';
import { classesOf, LAYOUTS, type EvalDataset, type EvalItem, type Layout } from './dataset-types.js';
import { isDir, looksLikeFolderSplit, readFolder } from './folder-reader.js';
import { readDeeppcb } from './deeppcb-reader.js';
import { magneticTileClasses, readMagneticTile } from './magnetic-tile-reader.js';
import { GROUND_TRUTH_FILE, readFixtures } from './fixtures-reader.js';

export interface OpenDatasetOptions {
  layout?: Layout | undefined;
  split?: string | undefined;
  limit?: number | undefined;
}

async function hasFile(dir: string, name: string): Promise<boolean> {
  return readdir(dir).then((l) => l.includes(name), () => false);
}

/** Work out the layout of `root` (throws EvalLayoutUnknownError). */
export async function detectLayout(root: string, split?: string): Promise<Layout> {
  if (!(await isDir(root))) throw new EvalLayoutUnknownError(`${root} is not a folder`);
  if (await hasFile(root, GROUND_TRUTH_FILE)) return 'fixtures';
  if ((await isDir(join(root, 'PCBData'))) || (await hasFile(root, 'subset_test.txt'))
    || ((await hasFile(root, 'test.txt')) && (await readdir(root)).some((d) => d.startsWith('group')))) return 'deeppcb';
  if ((await magneticTileClasses(root)).length > 0) return 'magnetic_tile';
  if (await looksLikeFolderSplit(root)) return 'folder';
  for (const s of new Set([split ?? 'test', 'test', 'train'])) if (await looksLikeFolderSplit(join(root, s))) return 'folder';
  throw new EvalLayoutUnknownError(`${root}: expected ground-truth.json, PCBData/ or a DeepPCB list file, `
    + `MT_<Class>/Imgs/, or good/ + defect/<class>/ (pass --layout ${LAYOUTS.join('|')})`);
}

/** Interleave good and defective items (a, b, a, b, …) and keep the first `limit`. */
export function limitItems(items: readonly EvalItem[], limit: number): EvalItem[] {
  const good = items.filter((i) => i.label === 'good');
  const bad = items.filter((i) => i.label === 'defect');
  const out: EvalItem[] = [];
  for (let i = 0; out.length < limit && (i < good.length || i < bad.length); i++) {
    if (i < good.length) out.push(good[i]!);
    if (out.length < limit && i < bad.length) out.push(bad[i]!);
  }
  return out;
}

export async function openDataset(dir: string, opts: OpenDatasetOptions = {}): Promise<EvalDataset> {
  const abs = resolve(dir);
  const layout = opts.layout ?? await detectLayout(abs, opts.split);
  if (!LAYOUTS.includes(layout)) throw new EvalOptionError(`layout '${String(layout)}' (use ${LAYOUTS.join('|')})`);
  let root = abs;
  let items: EvalItem[];
  switch (layout) {
    case 'folder': {
      const wanted = opts.split ?? ((await looksLikeFolderSplit(abs)) ? null : 'test');
      if (wanted !== null) {
        if (!(await isDir(join(abs, wanted)))) throw new EvalOptionError(`split '${wanted}': ${join(abs, wanted)} is not a folder`);
        root = join(abs, wanted);
      }
      items = await readFolder(root);
      return finish({ layout, root, split: wanted, items, classes: [] }, opts);
    }
    case 'deeppcb':
      items = await readDeeppcb(abs, opts.split ?? null);
      break;
    case 'magnetic_tile':
      if (opts.split) throw new EvalOptionError('the magnetic_tile layout has no splits: make one with models/training/split_dataset.py');
      items = await readMagneticTile(abs);
      break;
    case 'fixtures':
      if (opts.split) {
        root = join(abs, opts.split);
        if (!(await hasFile(root, GROUND_TRUTH_FILE))) throw new EvalOptionError(`split '${opts.split}': no ${GROUND_TRUTH_FILE} in ${root}`);
      }
      items = await readFixtures(root);
      break;
  }
  return finish({ layout, root, split: opts.split ?? null, items, classes: [] }, opts);
}

function finish(ds: EvalDataset, opts: OpenDatasetOptions): EvalDataset {
  let items = ds.items;
  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new EvalOptionError(`--limit ${opts.limit}: a positive integer`);
    // DeepPCB: the first N pairs of the list (template and tested image stay together)
    items = ds.layout === 'deeppcb' ? items.slice(0, 2 * opts.limit) : limitItems(items, opts.limit);
  }
  if (items.length === 0) throw new EvalEmptyError(`${ds.root}: no images`);
  return { ...ds, items, classes: classesOf(items) };
}
