/**
 * The two implementations of a manifest's preprocessing agree: JS area binning
 * feeding the model alone, and the preprocessing compiled into the ONNX graph.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';

const log = logger.child({ test: 'preprocess' });

describe('preprocessing fast path (JS area binning) = compiled ONNX graph', () => {
  it('the default model scores real parts the same both ways', async () => {
    const sharp = (await import('sharp')).default;
    const gt = JSON.parse(readFileSync('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const picks = [gt.images.find((i) => i.label === 'good')!, gt.images.find((i) => i.label === 'defect')!];
    const make = (preprocess: 'auto' | 'graph') => ModelRunner.create({ packageDir: 'models/default/1.0.0', frame: { width: 1280, height: 1024 },
      providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log, transport: 'shared', preprocess });
    const [fast, graph] = [await make('auto'), await make('graph')];
    try {
      expect(fast.startup.preprocess).toBe('js-area-binning');
      expect(graph.startup.preprocess).toBe('onnx-graph');
      for (const pick of picks) {
        const frame = await sharp(`test-images/test/${pick.file}`).toColourspace('b-w').raw().toBuffer();
        const a = await fast.infer(frame);
        const mapA = fast.copyMap();
        const b = await graph.infer(frame);
        expect(Math.abs(a.score - b.score)).toBeLessThan(1e-4);
        let worst = 0;
        for (let i = 0; i < mapA.length; i++) worst = Math.max(worst, Math.abs(mapA[i]! - b.map[i]!));
        expect(worst).toBeLessThan(1e-4);
        expect(a.score >= fast.threshold).toBe(pick.label === 'defect');
      }
    } finally {
      await fast.close();
      await graph.close();
    }
  });
});
