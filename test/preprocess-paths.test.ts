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

describe('area binning in WebAssembly SIMD', () => {
  it('gives the JS functions\' floats and bytes bit for bit on real parts, and is what the station uses here', async () => {
    const { readGray } = await import('../inspector/core/gray-image.js');
    const { binArea4, binArea4U8 } = await import('../inspector/inference/area-binning.js');
    const { createFrameBinner, createWasmBinner } = await import('../inspector/inference/area-binning-wasm.js');
    const binner = createFrameBinner(1280, 1024, 4);
    expect(binner.kind).toBe('wasm-simd'); // Node 20 has WebAssembly SIMD
    const plan = { width: 1280, height: 1024, factorX: 4, factorY: 4, mul: 1 / 255 / 0.25, add: -2 };
    const acc = new Uint32Array(320);
    const js = new Float32Array(320 * 256); const wasm = new Float32Array(320 * 256);
    const jsB = new Uint8Array(320 * 256); const wasmB = new Uint8Array(320 * 256);
    for (const name of ['00000', '00007', '00131']) {
      const img = await readGray(`test-images/test/parts/${name}.png`);
      binArea4(img.data, plan, js, acc);
      binner.binF32(img.data, plan, wasm);
      expect(Buffer.from(wasm.buffer).equals(Buffer.from(js.buffer))).toBe(true);
      binArea4U8(img.data, plan, jsB, acc);
      binner.binU8(img.data, plan, wasmB);
      expect(Buffer.from(wasmB).equals(Buffer.from(jsB))).toBe(true);
      expect(Math.max(...jsB) - Math.min(...jsB)).toBeGreaterThan(50);
    }
    // a 4x3 block: floats in wasm, bytes by the JS loop (the byte kernel rounds by a shift); both as the JS functions
    const img3 = await readGray('test-images/test/parts/00002.png');
    const rows = 1023;
    const crop = img3.data.slice(0, 1280 * rows);
    const b3 = createFrameBinner(1280, rows, 3);
    const plan3 = { width: 1280, height: rows, factorX: 4, factorY: 3, mul: 1, add: 0 };
    const j3 = new Float32Array(320 * 341); const w3 = new Float32Array(320 * 341);
    binArea4(crop, plan3, j3, acc); b3.binF32(crop, plan3, w3);
    expect(Buffer.from(w3.buffer).equals(Buffer.from(j3.buffer))).toBe(true);
    const jb3 = new Uint8Array(320 * 341); const wb3 = new Uint8Array(320 * 341);
    binArea4U8(crop, plan3, jb3, acc); b3.binU8(crop, plan3, wb3);
    expect(Buffer.from(wb3).equals(Buffer.from(jb3))).toBe(true);
    // frames the kernel cannot take fall back (width not a multiple of 16), and a wrong frame is refused
    expect(createWasmBinner(1284, 1024, 4)).toBeNull();
    expect(() => binner.binF32(new Uint8Array(640 * 512), { ...plan, width: 640, height: 512 }, wasm)).toThrow(RangeError);
  });

  it('embeds exactly the compiled wasm/*.wat sources', async () => {
    const { compileWat } = await import('../scripts/build-wasm.js');
    const { AREA_BINNING_WASM } = await import('../inspector/inference/area-binning-wasm.js');
    const { UNDISTORT_REMAP_WASM } = await import('../calibration/undistort-remap-wasm.js');
    const b64 = async (f: string): Promise<string> => Buffer.from(await compileWat(`inspector/inference/wasm/${f}`)).toString('base64');
    expect(await b64('area-binning.wat')).toBe(AREA_BINNING_WASM);
    expect(await b64('undistort-remap.wat')).toBe(UNDISTORT_REMAP_WASM);
  });

  it('the lens table in WebAssembly gives remapF32\'s floats and remapU8\'s bytes bit for bit', async () => {
    const { readGray } = await import('../inspector/core/gray-image.js');
    const { binArea4, binArea4U8 } = await import('../inspector/inference/area-binning.js');
    const { buildUndistortLut, remapF32, remapU8 } = await import('../calibration/undistort-map.js');
    const { createWasmRemap } = await import('../calibration/undistort-remap-wasm.js');
    // a strong pincushion lens, so that pixels take fractional neighbours and some rays leave the frame (clamped)
    const lut = buildUndistortLut({ fx: 1400, fy: 1400, cx: 639.5, cy: 511.5, dist: [0.25, 0.05, 0.001, -0.001, 0] }, { width: 1280, height: 1024 }, 4);
    expect(lut.outside).toBeGreaterThan(0);
    const remap = createWasmRemap(lut);
    expect(remap).not.toBeNull();
    const plan = { width: 1280, height: 1024, factorX: 4, factorY: 4, mul: 1 / 255 / 0.25, add: -2 };
    const acc = new Uint32Array(320);
    const f = new Float32Array(320 * 256); const b = new Uint8Array(320 * 256);
    const js = new Float32Array(f.length); const wasm = new Float32Array(f.length);
    const jsB = new Uint8Array(b.length); const wasmB = new Uint8Array(b.length);
    for (const name of ['00003', '00050']) {
      const img = await readGray(`test-images/test/parts/${name}.png`);
      binArea4(img.data, plan, f, acc);
      remapF32(f, lut, js);
      remap!.remapF32(f, wasm);
      expect(Buffer.from(wasm.buffer).equals(Buffer.from(js.buffer))).toBe(true);
      expect(Buffer.from(js.buffer).equals(Buffer.from(f.buffer))).toBe(false); // the table moved pixels
      binArea4U8(img.data, plan, b, acc);
      remapU8(b, lut, jsB);
      remap!.remapU8(b, wasmB);
      expect(Buffer.from(wasmB).equals(Buffer.from(jsB))).toBe(true);
    }
    expect(() => remap!.remapF32(new Float32Array(10), wasm)).toThrow(RangeError);
  });
});
