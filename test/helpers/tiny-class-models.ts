/**
 * Tiny ONNX models for the decision-rule tests: a 32x32 frame (model input), 8x8 average
 * pooling to a 4x4 map (one cell = 64 frame pixels), three channels from each cell's mean.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { GraphBuilder, attr, createModel, encodeModel } from '../../inspector/inference/onnx-graph.js';
import { ModelRunner } from '../../inspector/inference/model-runner.js';
import type { Logger } from '../../inspector/core/logger.js';

export const S = 32;

/** x = normalised pixels; bright = σ(4x−4) (255 → 0.982, 198 → 0.604, 128 → 0.018), dark = σ(−4x−4), background = σ(3) (high, but not a defect class). */
export function classChannels(g: GraphBuilder, x: string): { bg: string; bright: string; dark: string } {
  const four = g.constF32('four', [1], [4]);
  const bright = g.op('Sigmoid', [g.op('Sub', [g.op('Mul', [x, four]), four])]);
  const dark = g.op('Sigmoid', [g.op('Sub', [g.op('Mul', [x, g.constF32('mfour', [1], [-4])]), four])]);
  const bg = g.op('Sigmoid', [g.op('Add', [g.op('Mul', [x, g.constF32('zero', [1], [0])]), g.constF32('three', [1], [3])])]);
  return { bg, bright, dark };
}

/** the frame pooled to the 4x4 map grid */
export function pooledInput(g: GraphBuilder): string {
  g.input('image', 'float32', [1, 1, S, S]);
  return g.op('AveragePool', ['image'], { kernel_shape: attr.ints([8, 8]), strides: attr.ints([8, 8]) });
}

/** segmentation [1,3,4,4] (background, bright, dark); the image score is the max of `bright` */
export function segmentationModel(): Uint8Array {
  const g = new GraphBuilder('seg3');
  const c = classChannels(g, pooledInput(g));
  g.node('Concat', [c.bg, c.bright, c.dark], ['seg_map'], { axis: attr.int(1) });
  g.node('ReduceMax', [c.bright], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('seg_map', 'float32', [1, 3, 4, 4]);
  return encodeModel(createModel(g.build()));
}

/** A frame of grey 128 with the given 8x8 cells (0..15, row-major) set to a value. */
export function frameWith(cells: Record<number, number> = {}): Uint8Array {
  const f = new Uint8Array(S * S).fill(128);
  for (const [cell, v] of Object.entries(cells)) {
    const cx = (Number(cell) % 4) * 8; const cy = Math.floor(Number(cell) / 4) * 8;
    for (let y = cy; y < cy + 8; y++) f.fill(v, y * S + cx, y * S + cx + 8);
  }
  return f;
}

/** Writes a schema-2 package of one of these models into `dir` (created) and returns `dir`. */
export function writeTinyPackage(dir: string, name: string, model: Uint8Array, outputs: object, decision: object, source: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), model);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({
    schemaVersion: 2, name, version: '1.0.0',
    input: { name: 'image', shape: [1, 1, S, S], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] } },
    outputs, decision,
    training: { data: `synthetic (${source})`, script: source, command: 'vitest' },
    sha256: createHash('sha256').update(model).digest('hex'),
  }, null, 2));
  return dir;
}

/** A live-model runner of such a package on S x S frames, on the CPU. */
export const tinyRunner = (dir: string, log: Logger): Promise<ModelRunner> => ModelRunner.create({
  packageDir: dir, frame: { width: S, height: S }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log });
