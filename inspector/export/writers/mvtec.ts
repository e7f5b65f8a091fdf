/**
 * Anomalib Folder / MVTec-AD-style layout:
 *
 *   good/<name>.png               false rejects and (labelledOnly=false) unlabelled passes
 *   defect/<class>/<name>.png     true defects
 *   masks/<class>/<name>.png      the drawn regions rasterised at the image's resolution (0/255)
 *   folder.yaml                   an Anomalib `Folder` datamodule config for this tree
 *
 * A mask has the same file name as its image (Anomalib pairs them by name).
 */
import type { ExportItem } from '../selection.js';
import { encodeMaskPng, rasteriseMask } from '../regions.js';
import { classDir, imageSize, placeImage, writeOut, type FormatWriter, type WriterContext } from './common.js';

function folderYaml(classesUsed: string[], hasGood: boolean): string {
  const list = (prefix: string): string => classesUsed.map((c) => `\n      - ${prefix}/${classDir(c)}`).join('');
  return [
    '# Anomalib Folder datamodule for this export (paths relative to this file)',
    'class_path: anomalib.data.Folder',
    'init_args:',
    '  name: inspector-export',
    '  root: .',
    `  normal_dir: ${hasGood ? 'good' : 'null'}`,
    classesUsed.length ? `  abnormal_dir:${list('defect')}` : '  abnormal_dir: null',
    classesUsed.length ? `  mask_dir:${list('masks')}` : '  mask_dir: null',
    '',
  ].join('\n');
}

export const writeMvtec: FormatWriter = async (items: readonly ExportItem[], ctx: WriterContext) => {
  let annotations = 0;
  let defectsWithoutRegions = 0;
  const used = new Set<string>();
  for (const it of items) {
    if (it.role === 'good') {
      await placeImage(ctx, it, `good/${it.name}`);
    } else {
      const cls = classDir(it.defectClass ?? 'defect');
      used.add(it.defectClass ?? 'defect');
      await placeImage(ctx, it, `defect/${cls}/${it.name}`);
      const { width, height } = await imageSize(it.sourcePath);
      const mask = await rasteriseMask(it.regions, width, height);
      await writeOut(ctx, `masks/${cls}/${it.name.replace(/\.[^.]+$/, '.png')}`, await encodeMaskPng(mask, width, height));
      annotations += it.regions.length;
      if (it.regions.length === 0) defectsWithoutRegions++;
    }
    ctx.onItem();
  }
  const classesUsed = ctx.classes.filter((c) => used.has(c));
  await writeOut(ctx, 'folder.yaml', folderYaml(classesUsed, items.some((i) => i.role === 'good')));
  return { annotations, defectsWithoutRegions };
};
