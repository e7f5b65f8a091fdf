/**
 * YOLO (Ultralytics detection) layout:
 *
 *   images/<name>.png
 *   labels/<name>.txt   one `class cx cy w h` line per region, normalised to 0..1, 6 decimals;
 *                       empty for good images (background)
 *   classes.txt         one class name per line, line i = class i
 *   data.yaml           path/train/val/names
 *
 * A polygon becomes its bounding box; boxes are clipped to the image first.
 */
import type { ExportItem } from '../selection.js';
import { clippedBox } from '../regions.js';
import { imageSize, placeImage, writeOut, type FormatWriter, type WriterContext } from './common.js';

const f6 = (v: number): string => v.toFixed(6);
const yamlString = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML scalar

export const writeYolo: FormatWriter = async (items: readonly ExportItem[], ctx: WriterContext) => {
  let annotations = 0;
  let defectsWithoutRegions = 0;
  for (const it of items) {
    await placeImage(ctx, it, `images/${it.name}`);
    const lines: string[] = [];
    if (it.role === 'defect') {
      const cls = ctx.classes.indexOf(it.defectClass ?? 'defect');
      if (it.regions.length === 0) defectsWithoutRegions++;
      const { width, height } = await imageSize(it.sourcePath);
      for (const r of it.regions) {
        const b = clippedBox(r, width, height);
        if (b.w <= 0 || b.h <= 0) continue;
        lines.push(`${cls} ${f6((b.x + b.w / 2) / width)} ${f6((b.y + b.h / 2) / height)} ${f6(b.w / width)} ${f6(b.h / height)}`);
      }
    }
    annotations += lines.length;
    await writeOut(ctx, `labels/${it.name.replace(/\.[^.]+$/, '.txt')}`, lines.length ? `${lines.join('\n')}\n` : '');
    ctx.onItem();
  }
  await writeOut(ctx, 'classes.txt', ctx.classes.map((c) => `${c}\n`).join(''));
  await writeOut(ctx, 'data.yaml', [
    '# Ultralytics dataset config for this export (paths relative to this file)',
    'path: .',
    'train: images',
    'val: images',
    `nc: ${ctx.classes.length}`,
    'names:',
    ...ctx.classes.map((c, i) => `  ${i}: ${yamlString(c)}`),
    '',
  ].join('\n'));
  return { annotations, defectsWithoutRegions };
};
