/**
 * DeepPCB pairs (https://github.com/tangsanli5201/DeepPCB), read in its own layout:
 *
 *   [PCBData/]groupG/G/NNNNNNNN_temp.jpg     template: a good board
 *   [PCBData/]groupG/G/NNNNNNNN_test.jpg     tested: the same board with defects
 *   [PCBData/]groupG/G_not/NNNNNNNN.txt      one defect per line: x1 y1 x2 y2 type (1..6)
 *
 * The pairs come from a list file (the dataset's own format, one pair per
 * line: `groupG/G/NNNNNNNN.jpg groupG/G_not/NNNNNNNN.txt`): subset_test.txt,
 * else test.txt (split `test`), trainval.txt (split `train`/`trainval`), or a
 * named .txt file (in the dataset, or an absolute path: a subset of your own). Each pair gives a good item (template) and a defect item
 * (tested, with boxes and the template's path).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { EvalDatasetError } from './errors.js';
import type { EvalItem, GtBox } from './dataset-types.js';
import { isDir } from './folder-reader.js';

export const DEEPPCB_CLASSES: Readonly<Record<number, string>> = {
  1: 'open', 2: 'short', 3: 'mousebite', 4: 'spur', 5: 'spurious_copper', 6: 'pin_hole',
};

async function exists(p: string): Promise<boolean> {
  return readFile(p).then(() => true, () => false);
}

/** Where the group folders are, and which list file to read. */
export async function deeppcbListFile(root: string, split: string | null): Promise<{ list: string; base: string }> {
  const base = (await isDir(join(root, 'PCBData'))) ? join(root, 'PCBData') : root;
  const names = split === null || split === 'test' ? ['subset_test.txt', 'test.txt']
    : split === 'train' || split === 'trainval' ? ['trainval.txt']
      : split.endsWith('.txt') ? [split] : [`${split}.txt`];
  if (split !== null && isAbsolute(split)) {
    if (await exists(split)) return { list: split, base };
    throw new EvalDatasetError(`list file ${split} not found`);
  }
  for (const name of names) {
    for (const dir of [root, base]) {
      if (await exists(join(dir, name))) return { list: join(dir, name), base };
    }
  }
  throw new EvalDatasetError(`${root}: no DeepPCB list file (${names.join(' or ')})`);
}

/** Parse one annotation file: `x1 y1 x2 y2 type` per line (commas accepted too). */
export function parseDeeppcbBoxes(text: string, where: string): GtBox[] {
  const boxes: GtBox[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const v = line.trim().split(/[\s,]+/).map(Number);
    if (v.length !== 5 || v.some((n) => !Number.isFinite(n))) {
      throw new EvalDatasetError(`${where}:${i + 1}: expected "x1 y1 x2 y2 type", got "${line.trim()}"`);
    }
    const [x1, y1, x2, y2, type] = v as [number, number, number, number, number];
    if (x2 <= x1 || y2 <= y1) throw new EvalDatasetError(`${where}:${i + 1}: empty box ${x1},${y1},${x2},${y2}`);
    boxes.push({ x1, y1, x2, y2, defectClass: DEEPPCB_CLASSES[type] ?? `type_${type}` });
  });
  return boxes;
}

export async function readDeeppcb(root: string, split: string | null): Promise<EvalItem[]> {
  const { list, base } = await deeppcbListFile(root, split);
  const items: EvalItem[] = [];
  const lines = (await readFile(list, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  for (const [n, line] of lines.entries()) {
    const [img, ann] = line.trim().split(/\s+/);
    if (!img || !ann || !img.endsWith('.jpg')) throw new EvalDatasetError(`${list}:${n + 1}: expected "<image>.jpg <annotation>.txt"`);
    const stem = img.slice(0, -'.jpg'.length);
    const template = join(base, `${stem}_temp.jpg`);
    const tested = join(base, `${stem}_test.jpg`);
    const annPath = join(base, ann);
    let text: string;
    try {
      text = await readFile(annPath, 'utf8');
    } catch {
      throw new EvalDatasetError(`${list}:${n + 1}: annotation ${annPath} missing`);
    }
    const pair = relative(base, join(base, stem));
    items.push({ id: relative(root, template), image: template, label: 'good', defectClass: null, mask: null, boxes: [], pair });
    items.push({
      id: relative(root, tested), image: tested, label: 'defect', defectClass: 'pcb_defect', mask: null,
      boxes: parseDeeppcbBoxes(text, annPath), template, pair,
    });
  }
  if (items.length === 0) throw new EvalDatasetError(`${list}: no pairs listed`);
  return items;
}
