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

describe('byte binning for the registration path', () => {
  it('binArea4U8 equals resizeGray (area) on real parts, byte for byte', async () => {
    const { readGray } = await import('../inspector/core/gray-image.js');
    const { binArea4U8 } = await import('../inspector/inference/area-binning.js');
    const { resizeGray } = await import('../inspector/teach/frame-registration.js');
    for (const name of ['00000', '00007', '00131']) {
      const img = await readGray(`test-images/test/parts/${name}.png`);
      const ow = img.width / 4;
      const oh = img.height / 4;
      const viaBin = new Uint8Array(ow * oh);
      binArea4U8(img.data, { width: img.width, height: img.height, factorY: 4 }, viaBin, new Uint32Array(ow));
      const viaResize = new Uint8Array(ow * oh);
      resizeGray(img.data, img.width, img.height, viaResize, ow, oh, true);
      let diff = 0;
      for (let i = 0; i < viaBin.length; i++) if (viaBin[i] !== viaResize[i]) diff++;
      expect(diff).toBe(0);
      // and the image is not flat: the comparison covers real content
      expect(Math.max(...viaBin) - Math.min(...viaBin)).toBeGreaterThan(50);
    }
    // a non-power-of-two block height (factorY 3) rounds the same way too
    const img = await readGray('test-images/test/parts/00002.png');
    const rows = 1023; // 341 rows of 3
    const crop = img.data.subarray(0, img.width * rows);
    const a = new Uint8Array((img.width / 4) * (rows / 3));
    binArea4U8(crop, { width: img.width, height: rows, factorY: 3 }, a, new Uint32Array(img.width / 4));
    const b = new Uint8Array(a.length);
    // resizeGray's area path needs integer factors: 4 across, 3 down
    resizeGray(crop, img.width, rows, b, img.width / 4, rows / 3, true);
    let diff3 = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff3++;
    expect(diff3).toBe(0);
  });
});
