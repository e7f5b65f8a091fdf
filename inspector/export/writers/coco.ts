/**
 * COCO detection/segmentation JSON:
 *
 *   images/<name>.png
 *   annotations.json   { info, images, annotations, categories }
 *
 * Ids are stable: image ids 1..N in selection order (runId, seq), annotation
 * ids 1..M in that order and the label's region order, category id = index in
 * the class list + 1. bbox is [x, y, w, h] clipped to the image, segmentation
 * one polygon per region (a box as its four corners), area the region's area.
 * No dates: the same selection gives the same bytes.
 */
import type { ExportItem } from '../selection.js';
import { clippedBox, outline, regionArea } from '../regions.js';
import { imageSize, placeImage, stableJson, writeOut, type FormatWriter, type WriterContext } from './common.js';

export const writeCoco: FormatWriter = async (items: readonly ExportItem[], ctx: WriterContext) => {
  const images: unknown[] = [];
  const annotations: unknown[] = [];
  let defectsWithoutRegions = 0;
  let imageId = 0;
  for (const it of items) {
    imageId++;
    const file = `images/${it.name}`;
    await placeImage(ctx, it, file);
    const { width, height } = await imageSize(it.sourcePath);
    images.push({ id: imageId, file_name: file, width, height, run_id: it.runId, seq: it.seq, label: it.label ?? 'unlabelled' });
    if (it.role === 'defect') {
      const categoryId = ctx.classes.indexOf(it.defectClass ?? 'defect') + 1;
      if (it.regions.length === 0) defectsWithoutRegions++;
      for (const r of it.regions) {
        const b = clippedBox(r, width, height);
        annotations.push({
          id: annotations.length + 1, image_id: imageId, category_id: categoryId,
          bbox: [b.x, b.y, b.w, b.h], area: regionArea(r),
          segmentation: [outline(r).flat()], iscrowd: 0, region_id: r.id,
        });
      }
    }
    ctx.onItem();
  }
  const categories = ctx.classes.map((name, i) => ({ id: i + 1, name, supercategory: 'defect' }));
  await writeOut(ctx, 'annotations.json', stableJson({
    info: { description: 'inline-inspector export', version: '1' },
    images, annotations, categories,
  }));
  return { annotations: annotations.length, defectsWithoutRegions };
};
