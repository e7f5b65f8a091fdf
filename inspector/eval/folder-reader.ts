/**
 * Folder layout (Anomalib "Folder", the appliance's export format):
 *
 *   good/*.png|jpg…              good parts
 *   defect/<class>/*             defective parts, one folder per class
 *   masks/<class>/<stem>.<ext>   optional masks, same stem as the image (>= 128 = defect)
 *
 * MVTec AD's own split folders are read as well: every folder beside good/
 * (other than masks/ and ground_truth/) is a defect class, its masks in
 * ground_truth/<class>/<stem>_mask.png.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import { EvalDatasetError } from './errors.js';
import { IMAGE_EXTENSIONS, isImageFile, type EvalItem } from './dataset-types.js';

export async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

export async function listImages(dir: string): Promise<string[]> {
  if (!(await isDir(dir))) return [];
  return (await readdir(dir)).filter(isImageFile).sort().map((f) => join(dir, f));
}

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir)).sort()) if (await isDir(join(dir, e))) out.push(e);
  return out;
}

async function findMask(root: string, cls: string, image: string): Promise<string | null> {
  const stem = basename(image, extname(image));
  for (const [folder, suffix] of [[join(root, 'masks', cls), ''], [join(root, 'ground_truth', cls), '_mask']] as const) {
    for (const ext of IMAGE_EXTENSIONS) {
      const p = join(folder, stem + suffix + ext);
      if (await isFile(p)) return p;
    }
  }
  return null;
}

/** Whether `dir` looks like one split of a Folder/MVTec dataset. */
export async function looksLikeFolderSplit(dir: string): Promise<boolean> {
  return (await isDir(join(dir, 'good'))) || (await isDir(join(dir, 'defect')));
}

export async function readFolder(root: string): Promise<EvalItem[]> {
  const items: EvalItem[] = (await listImages(join(root, 'good'))).map((image) => ({
    id: relative(root, image), image, label: 'good', defectClass: null, mask: null, boxes: null,
  }));
  const defectRoot = join(root, 'defect');
  const mvtec = !(await isDir(defectRoot));
  const base = mvtec ? root : defectRoot;
  const classes = (await subdirs(base)).filter((d) => !mvtec || !['good', 'masks', 'ground_truth', 'train', 'test'].includes(d));
  for (const cls of classes) {
    for (const image of await listImages(join(base, cls))) {
      items.push({ id: relative(root, image), image, label: 'defect', defectClass: cls, mask: await findMask(root, cls, image), boxes: null });
    }
  }
  if (items.length === 0) throw new EvalDatasetError(`${root}: no images under good/ or defect/<class>/`);
  return items;
}
