/**
 * A tiny real multi-class package (segmentation [1,3,4,4] over a 32x32 frame, built as ONNX in
 * TypeScript): classes background / bright / dark, defect classes bright and dark. A mid-gray
 * frame passes; an 8x8 cell at 0 is a `dark` defect, one at 255 a `bright` one.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder, attr, createModel, encodeModel } from '../../inspector/inference/onnx-graph.js';

export const CLASS_FRAME = 32;
export const CLASSES = ['background', 'bright', 'dark'];

function segmentationModel(): Uint8Array {
  const S = CLASS_FRAME;
  const g = new GraphBuilder('seg3');
  g.input('image', 'float32', [1, 1, S, S]);
  const x = g.op('AveragePool', ['image'], { kernel_shape: attr.ints([8, 8]), strides: attr.ints([8, 8]) });
  const four = g.constF32('four', [1], [4]);
  const bright = g.op('Sigmoid', [g.op('Sub', [g.op('Mul', [x, four]), four])]);
  const dark = g.op('Sigmoid', [g.op('Sub', [g.op('Mul', [x, g.constF32('mfour', [1], [-4])]), four])]);
  const bg = g.op('Sigmoid', [g.op('Add', [g.op('Mul', [x, g.constF32('zero', [1], [0])]), g.constF32('three', [1], [3])])]);
  g.node('Concat', [bg, bright, dark], ['seg_map'], { axis: attr.int(1) });
  g.node('Max', [bright, dark], ['either'], {});
  g.node('ReduceMax', ['either'], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('seg_map', 'float32', [1, 3, 4, 4]);
  return encodeModel(createModel(g.build()));
}

/** Writes the package into `dir` (created) and returns it. */
export function writeSegmentationPackage(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const model = segmentationModel();
  writeFileSync(join(dir, 'model.onnx'), model);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({
    schemaVersion: 2, name: 'multi-seg', version: '1.0.0',
    input: { name: 'image', shape: [1, 1, CLASS_FRAME, CLASS_FRAME], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] } },
    outputs: { kind: 'segmentation', score: { name: 'score', shape: [1] }, map: { name: 'seg_map', shape: [1, 3, 4, 4] },
      classes: CLASSES, defectClasses: ['bright', 'dark'] },
    decision: { threshold: 0.5, minDefectAreaPx: 0 },
    training: { data: 'synthetic (test/helpers/class-packages.ts)', script: 'test/helpers/class-packages.ts', command: 'vitest' },
    sha256: createHash('sha256').update(model).digest('hex'),
  }, null, 2));
  return dir;
}

/** A mid-gray frame with 8x8 cells (index 0..15, row-major) set to the given values. */
export function classFrame(cells: Record<number, number> = {}): Uint8Array {
  const S = CLASS_FRAME;
  const f = new Uint8Array(S * S).fill(128);
  for (const [cell, v] of Object.entries(cells)) {
    const cx = (Number(cell) % 4) * 8; const cy = Math.floor(Number(cell) / 4) * 8;
    for (let y = cy; y < cy + 8; y++) f.fill(v, y * S + cx, y * S + cx + 8);
  }
  return f;
}
