/**
 * Magnetic-tile layout (Huang et al.): `MT_<Class>/Imgs/<name>.jpg` with the
 * same-named `<name>.png` mask. MT_Free is good; every other MT_<Class> is the
 * defect class `<class>` (lower case). Masks have soft edges: >= 128 = defect.
 */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { EvalDatasetError } from './errors.js';
import type { EvalItem } from './dataset-types.js';
import { isDir } from './folder-reader.js';

export async function magneticTileClasses(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of (await readdir(root)).sort()) {
    if (d.startsWith('MT_') && (await isDir(join(root, d, 'Imgs')))) out.push(d);
  }
  return out;
}

export async function readMagneticTile(root: string): Promise<EvalItem[]> {
  const items: EvalItem[] = [];
  for (const d of await magneticTileClasses(root)) {
    const dir = join(root, d, 'Imgs');
    const files = new Set(await readdir(dir));
    const good = d === 'MT_Free';
    for (const f of [...files].filter((x) => x.toLowerCase().endsWith('.jpg')).sort()) {
      const maskName = `${f.slice(0, -4)}.png`;
      const image = join(dir, f);
      items.push({
        id: relative(root, image), image, label: good ? 'good' : 'defect', defectClass: good ? null : d.slice(3).toLowerCase(),
        mask: !good && files.has(maskName) ? join(dir, maskName) : null, boxes: null,
      });
    }
  }
  if (items.length === 0) throw new EvalDatasetError(`${root}: no MT_<Class>/Imgs/*.jpg`);
  return items;
}
