/**
 * A letterbox package on the line: a real ONNX package (built in TypeScript: 8x8 average pool of
 * the 64x64 input, sigmoid) run by the model runner on a 1280x512 frame, which the compiled
 * preprocessing scales to 64x26 and pads 19 rows above. The runner's defect area per cell is the
 * scaled frame's (not the stretched one), and the map the part loop hands to the image writer is
 * resampled onto the frame: the hot cells lie where the bright block is in the frame.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { Frame } from '../inspector/core/types.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';
import { ResultStore } from '../inspector/results/result-store.js';
import { PartLoop } from '../inspector/station/part-loop.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import { Alarms } from '../inspector/station/alarms.js';
import { lineIdentity } from './helpers/line-identity.js';

const log = logger.child({ test: 'letterbox-line' });
const IN = 64;
const CELLS = 8;
const FRAME = { width: 1280, height: 512 };
let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'inspector-letterbox-')); });
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

/** map = sigmoid(4 * avgpool8(x) - 4): a cell of normalised value ≥ 1 (grey ≥ 191) is hot; score = its max. */
function writePackage(resize: 'letterbox' | 'linear'): string {
  const g = new GraphBuilder('lb');
  g.input('image', 'float32', [1, 1, IN, IN]);
  const x = g.op('AveragePool', ['image'], { kernel_shape: attr.ints([8, 8]), strides: attr.ints([8, 8]) });
  const four = g.constF32('four', [1], [4]);
  g.node('Sigmoid', [g.op('Sub', [g.op('Mul', [x, four]), four])], ['map'], {});
  g.node('ReduceMax', ['map'], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('map', 'float32', [1, 1, CELLS, CELLS]);
  const model = encodeModel(createModel(g.build()));
  const dir = join(work, resize, '1.0.0');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), model);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({
    schemaVersion: 2, name: `lb-${resize}`, version: '1.0.0',
    input: { name: 'image', shape: [1, 1, IN, IN], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize,
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] } },
    outputs: { kind: 'segmentation', score: { name: 'score', shape: [1] }, map: { name: 'map', shape: [1, 1, CELLS, CELLS] },
      classes: ['good', 'defect'], defectClasses: ['defect'] },
    decision: { threshold: 0.5, minDefectAreaPx: 0 },
    training: { data: 'synthetic (test/letterbox-line.test.ts)', script: 'test/letterbox-line.test.ts', command: 'vitest' },
    sha256: createHash('sha256').update(model).digest('hex'),
  }, null, 2));
  return dir;
}

/** Grey 100 with a white block over frame columns 640..960 and rows 0..128: cells (0..1, 4..5) of an 8x8 grid on the frame. */
function frame(): Uint8Array {
  const f = new Uint8Array(FRAME.width * FRAME.height).fill(100);
  for (let y = 0; y < 128; y++) f.fill(255, y * FRAME.width + 640, y * FRAME.width + 960);
  return f;
}

const hot = (map: ArrayLike<number>): string[] => {
  const out: string[] = [];
  for (let i = 0; i < map.length; i++) if (map[i]! >= 0.5) out.push(`${Math.floor(i / CELLS)},${i % CELLS}`);
  return out;
};

describe('a letterbox package on the line', () => {
  it('defect area per cell is the scaled frame\'s; the map saved with the image is resampled onto the frame', async () => {
    const runner = await ModelRunner.create({ packageDir: writePackage('letterbox'), frame: FRAME, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    const store = await ResultStore.open({ dbPath: join(work, 'lb.sqlite'), logger: log });
    try {
      // scale min(64/1280, 64/512) = 0.05: a cell of 8x8 input px is 160x160 frame px (stretched it would be 160x64)
      expect(runner.mapCellAreaPx).toBeCloseTo(160 * 160, 6);
      expect(runner.mapFrameIndex).not.toBeNull();

      // what the model sees: the frame in input rows 19..45; the block in rows 19..25, so map row 2 (input rows 16..24)
      const raw = await runner.infer(frame());
      expect(hot(raw.map)).toEqual(['2,4', '2,5']);

      // the part loop: what it offers the image writer is the map over the frame (rows 0..1 of the frame grid hold the block)
      const offered: Array<{ data: number[]; width: number; height: number }> = [];
      const images = { offer: (job: { map?: { data: Float32Array; width: number; height: number } }) => {
        if (job.map) offered.push({ data: [...job.map.data], width: job.map.width, height: job.map.height });
        return 'queued';
      } };
      const metrics = new StationMetrics(() => ({ camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 },
        plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } }), { station: 't' });
      const loop = new PartLoop(runner, { writeResult: async () => 1 }, store, images, metrics, new Alarms(log, () => undefined),
        { runId: 'lb-run', budgetMs: 10_000, saveImages: 'all', passSampleEvery: 1, doubtMargin: 0, identity: lineIdentity() });
      async function* source(): AsyncGenerator<Frame> {
        for (let seq = 1; seq <= 2; seq++) yield { seq, partId: seq, lineEpoch: 1, capturedNs: process.hrtime.bigint(), ...FRAME, format: 'GRAY8', data: frame() };
      }
      await loop.run(source());
      await loop.drain();
      expect(offered).toHaveLength(2);
      for (const m of offered) {
        expect([m.width, m.height]).toEqual([CELLS, CELLS]);
        expect(hot(m.data)).toEqual(['0,4', '0,5', '1,4', '1,5']);
      }
      const rows = await store.query({ runId: 'lb-run', limit: 5 });
      expect(rows.map((r) => r.verdict)).toEqual(['reject', 'reject']);
    } finally { await store.close(); await runner.close(); }
  }, 60_000);

  it('the same model stretching the frame (linear): the map covers the frame as it is, the cell area is the stretched one', async () => {
    const runner = await ModelRunner.create({ packageDir: writePackage('linear'), frame: FRAME, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    try {
      expect(runner.mapFrameIndex).toBeNull();
      expect(runner.mapCellAreaPx).toBeCloseTo((1280 * 512) / (CELLS * CELLS), 6);
      const r = await runner.infer(frame());
      expect(hot(r.map)).toEqual(['0,4', '0,5', '1,4', '1,5']);
    } finally { await runner.close(); }
  }, 60_000);
});
