/**
 * Inference: graph builder, compiled preprocessing, model packages, provider
 * fallback and the worker-hosted runner, all against real onnxruntime-node.
 * Every model here is built in the test with onnx-graph.ts and written as a
 * real package into a temp folder: nothing depends on models/default.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { ModelRunner, type InferResult } from '../inspector/inference/model-runner.js';
import { loadModelPackage } from '../inspector/inference/model-package.js';
import {
  GraphBuilder, attr, createModel, decodeModel, describeValueInfo, encodeModel, readTensorF32, tensorF32,
} from '../inspector/inference/onnx-graph.js';
import { compileDeployedModel, planPreprocessing } from '../inspector/inference/preprocess-graph.js';
import { baseSessionOptions, createSessionWithFallback, profilePlacement, validateProviders } from '../inspector/inference/providers.js';

const log = logger.child({ mod: 'inference-test' });
const work = mkdtempSync(join(tmpdir(), 'inspector-inference-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => { const d = join(work, `pkg${++dirCount}`); mkdirSync(d); return d; };

// ---------------------------------------------------------------- model + package builders

/** mulberry32: seeded uniform [0,1) */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface TinySpec {
  h: number; w: number; mapH: number; mapW: number;
  inputName?: string; scoreName?: string; mapName?: string; nan?: boolean;
}

/** image [1,1,h,w] → AveragePool to the map size → Sigmoid = map; ReduceMax = score [1]. */
function tinyModel(s: TinySpec): Uint8Array {
  const input = s.inputName ?? 'image';
  const mapName = s.mapName ?? 'anomaly_map';
  const g = new GraphBuilder('tiny');
  g.input(input, 'float32', [1, 1, s.h, s.w]);
  const k = [s.h / s.mapH, s.w / s.mapW];
  let x = g.op('AveragePool', [input], { kernel_shape: attr.ints(k), strides: attr.ints(k) });
  if (s.nan) x = g.op('Mul', [x, g.constF32('nan', [], [Number.NaN])]);
  g.node('Sigmoid', [x], [mapName]);
  g.node('ReduceMax', [mapName], [s.scoreName ?? 'score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output(s.scoreName ?? 'score', 'float32', [1]);
  g.output(mapName, 'float32', [1, 1, s.mapH, s.mapW]);
  return encodeModel(createModel(g.build()));
}

/**
 * A small CNN: 4 convs (8–16 channels) from [1,1,h,w] down 8x, 1x1 head,
 * sigmoid map, GlobalMaxPool score (ops valid from opset 7 to today).
 */
function cnnModel(h: number, w: number, seed = 7, opset = 13): Uint8Array {
  const r = rng(seed);
  const g = new GraphBuilder('cnn');
  g.input('image', 'float32', [1, 1, h, w]);
  let x = 'image';
  let cin = 1;
  for (const [cout, stride] of [[8, 1], [16, 2], [16, 2], [16, 2]] as const) {
    const n = cout * cin * 9;
    const wt = g.constF32('w', [cout, cin, 3, 3], Array.from({ length: n }, () => (r() * 2 - 1) * Math.sqrt(6 / (cin * 9))));
    const b = g.constF32('b', [cout], Array.from({ length: cout }, () => (r() - 0.5) * 0.1));
    x = g.op('Conv', [x, wt, b], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([stride, stride]) });
    x = g.op('Relu', [x]);
    cin = cout;
  }
  const hw = g.constF32('head_w', [1, cin, 1, 1], Array.from({ length: cin }, () => (r() * 2 - 1) * 0.3));
  const hb = g.constF32('head_b', [1], [-1]);
  x = g.op('Conv', [x, hw, hb], { kernel_shape: attr.ints([1, 1]) });
  g.node('Sigmoid', [x], ['anomaly_map']);
  g.node('Reshape', [g.op('GlobalMaxPool', ['anomaly_map']), g.constI64('score_shape', [1], [1])], ['score']);
  g.output('score', 'float32', [1]);
  g.output('anomaly_map', 'float32', [1, 1, h / 8, w / 8]);
  return encodeModel(createModel(g.build(), { opset }));
}

function manifestFor(s: TinySpec, over: Partial<Manifest['input']> = {}): Manifest {
  return {
    schemaVersion: 1, name: 'tiny', version: '0.0.1',
    input: {
      name: s.inputName ?? 'image', shape: [1, 1, s.h, s.w], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] }, ...over,
    },
    outputs: {
      kind: 'anomaly_map', score: { name: s.scoreName ?? 'score', shape: [1] },
      map: { name: s.mapName ?? 'anomaly_map', shape: [1, 1, s.mapH, s.mapW] }, classes: ['good', 'defect'], defectClasses: ['defect'],
    },
    decision: { threshold: 0.5, minDefectAreaPx: 0 },
    training: { data: 'synthetic', script: 'test/inference.test.ts', command: 'vitest' },
    sha256: '0'.repeat(64),
  };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Write a package; the manifest's sha256 is set to the model's unless `keepHash`. */
function writePackage(model: Uint8Array | string, manifest: Manifest | string, opts: { keepHash?: boolean } = {}): string {
  const dir = freshDir();
  const bytes = typeof model === 'string' ? Buffer.from(model) : model;
  writeFileSync(join(dir, 'model.onnx'), bytes);
  const m = typeof manifest === 'string' ? manifest
    : JSON.stringify(opts.keepHash ? manifest : { ...manifest, sha256: sha(bytes) }, null, 2);
  writeFileSync(join(dir, 'manifest.json'), m);
  return dir;
}

// ---------------------------------------------------------------- JS references

/** Deterministic test frame. */
function makeFrame(w: number, h: number, seed = 1): Uint8Array {
  const r = rng(seed);
  const f = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = Math.min(255, Math.floor((x * 3 + y * 2) % 200 + r() * 55));
  return f;
}

function areaResize(src: Uint8Array, fw: number, fh: number, w: number, h: number): Float32Array {
  const kx = fw / w, ky = fh / h;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let s = 0;
    for (let j = 0; j < ky; j++) for (let i = 0; i < kx; i++) s += src[(y * ky + j) * fw + x * kx + i]!;
    out[y * w + x] = s / (kx * ky);
  }
  return out;
}

/** Bilinear, half_pixel coordinates, no antialias (ONNX Resize linear / OpenCV INTER_LINEAR). */
function linearResize(src: Uint8Array, fw: number, fh: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h);
  const coord = (o: number, inSize: number, outSize: number): [number, number, number] => {
    const c = Math.max(0, Math.min((o + 0.5) * (inSize / outSize) - 0.5, inSize - 1));
    const i0 = Math.floor(c);
    return [i0, Math.min(i0 + 1, inSize - 1), c - i0];
  };
  for (let y = 0; y < h; y++) {
    const [y0, y1, ly] = coord(y, fh, h);
    for (let x = 0; x < w; x++) {
      const [x0, x1, lx] = coord(x, fw, w);
      const top = src[y0 * fw + x0]! * (1 - lx) + src[y0 * fw + x1]! * lx;
      const bot = src[y1 * fw + x0]! * (1 - lx) + src[y1 * fw + x1]! * lx;
      out[y * w + x] = top * (1 - ly) + bot * ly;
    }
  }
  return out;
}

function jsPreprocess(frame: Uint8Array, fw: number, fh: number, m: Manifest, kind: 'area' | 'linear' | 'none'): Float32Array {
  const [, , h, w] = m.input.shape;
  const x = kind === 'none' ? Float32Array.from(frame) : kind === 'area' ? areaResize(frame, fw, fh, w, h) : linearResize(frame, fw, fh, w, h);
  const { scale, mean, std } = m.input.normalisation;
  return x.map((v) => (v * scale - mean[0]!) / std[0]!);
}

/** The tiny model in JS. */
function jsTiny(x: Float32Array, s: TinySpec): { score: number; map: Float32Array } {
  const pooled = new Float32Array(s.mapH * s.mapW);
  const ky = s.h / s.mapH, kx = s.w / s.mapW;
  for (let y = 0; y < s.mapH; y++) for (let xx = 0; xx < s.mapW; xx++) {
    let acc = 0;
    for (let j = 0; j < ky; j++) for (let i = 0; i < kx; i++) acc += x[(y * ky + j) * s.w + xx * kx + i]!;
    pooled[y * s.mapW + xx] = acc / (kx * ky);
  }
  const map = pooled.map((v) => 1 / (1 + Math.exp(-v)));
  return { score: Math.max(...map), map };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function runSession(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

// ---------------------------------------------------------------- tests

describe('onnx-graph builder', () => {
  it('round-trips a model through bytes and runs it', async () => {
    const bytes = tinyModel({ h: 8, w: 8, mapH: 2, mapW: 2 });
    const m = decodeModel(bytes);
    expect(m.graph!.input!.map(describeValueInfo)).toEqual([{ name: 'image', dtype: 'float32', elemType: 1, shape: [1, 1, 8, 8] }]);
    expect(Array.from(readTensorF32(tensorF32('t', [2], [1.5, -2])))).toEqual([1.5, -2]);
    const x = new Float32Array(64).fill(0);
    const out = await runSession(bytes, { image: new ort.Tensor('float32', x, [1, 1, 8, 8]) });
    expect(out.score![0]).toBeCloseTo(0.5, 6);
    expect(Array.from(out.anomaly_map!)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });
});

describe('preprocessing compiled into the graph', () => {
  const cases: Array<{ name: string; fw: number; fh: number; spec: TinySpec; resize: 'area' | 'linear'; expect: 'area' | 'linear' | 'none' }> = [
    { name: 'area 4x (AveragePool)', fw: 160, fh: 128, spec: { h: 32, w: 40, mapH: 8, mapW: 10 }, resize: 'area', expect: 'area' },
    { name: 'area, non-integer factor → bilinear', fw: 150, fh: 100, spec: { h: 32, w: 40, mapH: 8, mapW: 10 }, resize: 'area', expect: 'linear' },
    { name: 'linear', fw: 157, fh: 131, spec: { h: 32, w: 40, mapH: 8, mapW: 10 }, resize: 'linear', expect: 'linear' },
    { name: 'no resize, model input named "frame"', fw: 40, fh: 32, spec: { h: 32, w: 40, mapH: 8, mapW: 10, inputName: 'frame' }, resize: 'linear', expect: 'none' },
  ];
  for (const c of cases) {
    it(`${c.name}: deployed graph = JS preprocessing → model`, async () => {
      const manifest = manifestFor(c.spec, { resize: c.resize });
      expect(planPreprocessing(manifest, { width: c.fw, height: c.fh }).resize.kind).toBe(c.expect);
      const model = c.spec.inputName === 'frame' ? tinyModel(c.spec) : cnnModel(c.spec.h, c.spec.w);
      const deployed = compileDeployedModel(model, manifest, { width: c.fw, height: c.fh });
      const frame = makeFrame(c.fw, c.fh, 3);
      const got = await runSession(deployed, { frame: new ort.Tensor('uint8', frame, [1, 1, c.fh, c.fw]) });
      const x = jsPreprocess(frame, c.fw, c.fh, manifest, c.expect);
      const ref = await runSession(model, { [manifest.input.name]: new ort.Tensor('float32', x, manifest.input.shape) });
      expect(maxAbsDiff(got.score!, ref.score!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.anomaly_map!, ref.anomaly_map!)).toBeLessThan(1e-5);
      if (c.spec.inputName === 'frame') {
        const js = jsTiny(x, c.spec);
        expect(maxAbsDiff(got.anomaly_map!, js.map)).toBeLessThan(1e-5);
      }
    });
  }

  for (const opset of [11, 13, 17, 19]) {
    it(`keeps the model's opset ${opset} (linear and area resize)`, async () => {
      const spec: TinySpec = { h: 32, w: 40, mapH: 4, mapW: 5 };
      const model = cnnModel(32, 40, 11, opset);
      for (const [resize, fw, fh] of [['linear', 100, 90], ['area', 80, 64]] as const) {
        const manifest = manifestFor(spec, { resize });
        const deployed = compileDeployedModel(model, manifest, { width: fw, height: fh });
        expect(decodeModel(deployed).opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([['', opset]]);
        const frame = makeFrame(fw, fh, 9);
        const got = await runSession(deployed, { frame: new ort.Tensor('uint8', frame, [1, 1, fh, fw]) });
        const ref = await runSession(model, { image: new ort.Tensor('float32', jsPreprocess(frame, fw, fh, manifest, resize), [1, 1, 32, 40]) });
        expect(maxAbsDiff(got.anomaly_map!, ref.anomaly_map!)).toBeLessThan(1e-5);
      }
    });
  }

  it('refuses a model whose opset is too old for a linear Resize', () => {
    const spec: TinySpec = { h: 32, w: 40, mapH: 4, mapW: 5 };
    expect(() => compileDeployedModel(cnnModel(32, 40, 11, 9), manifestFor(spec, { resize: 'linear' }), { width: 100, height: 90 }))
      .toThrow(expect.objectContaining({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH' }));
  });

  it('refuses rgb models for GRAY8 frames, a missing model input and per-channel values that do not fit', () => {
    const spec = { h: 32, w: 40, mapH: 8, mapW: 10 };
    const model = tinyModel(spec);
    expect(() => compileDeployedModel(model, manifestFor(spec, { colour: 'rgb', shape: [1, 3, 32, 40] }), { width: 160, height: 128 }))
      .toThrow(expect.objectContaining({ code: 'INSPECTOR_FRAME_SHAPE_MISMATCH' }));
    expect(() => compileDeployedModel(model, manifestFor({ ...spec, inputName: 'other' }), { width: 160, height: 128 }))
      .toThrow(expect.objectContaining({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH' }));
    const twoMeans = manifestFor(spec, { normalisation: { scale: 1, mean: [0.1, 0.2], std: [1] } });
    expect(() => compileDeployedModel(model, twoMeans, { width: 160, height: 128 }))
      .toThrow(expect.objectContaining({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH' }));
  });
});

describe('model package refusals', () => {
  const spec: TinySpec = { h: 32, w: 40, mapH: 8, mapW: 10 };
  const good = (): [Uint8Array, Manifest] => [tinyModel(spec), manifestFor(spec)];
  const refusal = (dir: string): Promise<unknown> => loadModelPackage(dir);

  it('accepts a good package', async () => {
    const [model, manifest] = good();
    const pkg = await loadModelPackage(writePackage(model, manifest));
    expect(pkg.sha256).toBe(sha(model));
    expect(pkg.manifest.name).toBe('tiny');
  });

  it('each refusal has its code', async () => {
    const [model, manifest] = good();
    const cases: Array<[string, string, () => string]> = [
      ['missing folder', 'INSPECTOR_MODEL_PACKAGE_MISSING', () => join(work, 'nope')],
      ['missing model.onnx', 'INSPECTOR_MODEL_PACKAGE_MISSING', () => { const d = writePackage(model, manifest); rmSync(join(d, 'model.onnx')); return d; }],
      ['missing manifest', 'INSPECTOR_MODEL_PACKAGE_MISSING', () => { const d = writePackage(model, manifest); rmSync(join(d, 'manifest.json')); return d; }],
      ['bad JSON', 'INSPECTOR_MODEL_MANIFEST_INVALID', () => writePackage(model, '{ "schemaVersion": 1,')],
      ['schema violation', 'INSPECTOR_MODEL_MANIFEST_INVALID', () => writePackage(model, { ...manifest, name: 'Bad Name', input: { ...manifest.input, layout: 'NHWC' as 'NCHW' } })],
      ['hash mismatch', 'INSPECTOR_MODEL_HASH_MISMATCH', () => writePackage(model, { ...manifest, sha256: 'a'.repeat(64) }, { keepHash: true })],
      ['garbage model bytes', 'INSPECTOR_MODEL_MALFORMED', () => writePackage('this is not an onnx graph', manifest)],
      ['empty model file', 'INSPECTOR_MODEL_MALFORMED', () => writePackage('', manifest)],
      ['input name mismatch', 'INSPECTOR_MODEL_CONTRACT_MISMATCH', () => writePackage(tinyModel({ ...spec, inputName: 'x' }), manifest)],
      ['input shape mismatch', 'INSPECTOR_MODEL_CONTRACT_MISMATCH', () => writePackage(model, { ...manifest, input: { ...manifest.input, shape: [1, 1, 64, 40] } })],
      ['output name mismatch', 'INSPECTOR_MODEL_CONTRACT_MISMATCH', () => writePackage(tinyModel({ ...spec, mapName: 'heatmap' }), manifest)],
      ['output shape mismatch', 'INSPECTOR_MODEL_CONTRACT_MISMATCH', () => writePackage(model, { ...manifest, outputs: { ...manifest.outputs, map: { name: 'anomaly_map', shape: [1, 1, 4, 5] } } })],
    ];
    for (const [name, code, make] of cases) {
      const err = await refusal(make()).then(() => null, (e: unknown) => e as Error & { code: string });
      expect(err, name).not.toBeNull();
      expect({ name, code: err!.code }).toEqual({ name, code });
    }
    // schema errors are listed with their paths
    const e = await refusal(writePackage(model, { ...manifest, name: 'Bad Name' })).catch((x: Error) => x);
    expect((e as Error).message).toMatch(/\/name/);
  });

  it('coded errors survive the worker boundary (same code and message)', async () => {
    const [model, manifest] = good();
    const dir = writePackage(model, { ...manifest, sha256: 'b'.repeat(64) }, { keepHash: true });
    const direct = await loadModelPackage(dir).catch((e: Error) => e);
    const viaWorker = await ModelRunner.create({ packageDir: dir, frame: { width: 160, height: 128 }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log })
      .catch((e: Error) => e);
    expect(viaWorker).toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH', message: (direct as Error).message });
  });

  it('a model producing NaN fails warm-up with INSPECTOR_MODEL_OUTPUT_INVALID', async () => {
    const dir = writePackage(tinyModel({ ...spec, nan: true }), manifestFor(spec));
    await expect(ModelRunner.create({ packageDir: dir, frame: { width: 160, height: 128 }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 3, logger: log }))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_OUTPUT_INVALID' });
  });
});

describe('execution providers', () => {
  const model = tinyModel({ h: 32, w: 40, mapH: 8, mapW: 10 });

  it("['cuda','cpu'] ends on cpu with the cuda failure recorded", async () => {
    const r = await createSessionWithFallback(model, { providers: ['cuda', 'cpu'], intraOpNumThreads: 1, logger: log });
    expect(r.provider).toBe('cpu');
    expect(r.fallbacks).toHaveLength(1);
    expect(r.fallbacks[0]).toMatchObject({ provider: 'cuda', reason: expect.stringMatching(/shared library/i) });
    await r.session.release();
  });

  it("['bogus'] is a config error; nothing usable is NoExecutionProvider", async () => {
    expect(() => validateProviders(['bogus'])).toThrow(expect.objectContaining({ code: 'INSPECTOR_CONFIG_INVALID' }));
    expect(() => validateProviders([])).toThrow(expect.objectContaining({ code: 'INSPECTOR_CONFIG_INVALID' }));
    await expect(createSessionWithFallback(model, { providers: ['bogus'], intraOpNumThreads: 1, logger: log }))
      .rejects.toMatchObject({ code: 'INSPECTOR_CONFIG_INVALID' });
    await expect(createSessionWithFallback(model, { providers: ['tensorrt', 'cuda'], intraOpNumThreads: 1, logger: log }))
      .rejects.toMatchObject({ code: 'INSPECTOR_NO_EXECUTION_PROVIDER' });
  });

  it('node placement is read back from a profiled run (the silent-fallback check)', async () => {
    const placement = await profilePlacement(model, baseSessionOptions('cpu', 1));
    expect(Object.keys(placement)).toEqual(['CPUExecutionProvider']);
    expect(placement.CPUExecutionProvider).toBeGreaterThanOrEqual(2);
  });

  it('webgpu: either runs with nodes on the GPU or is recorded as a fallback (printed)', async () => {
    const t0 = performance.now();
    const r = await createSessionWithFallback(model, { providers: ['webgpu', 'cpu'], intraOpNumThreads: 1, logger: log });
    const ms = performance.now() - t0;
    console.log(`webgpu → ${r.provider} in ${ms.toFixed(1)} ms; fallbacks: ${JSON.stringify(r.fallbacks)}; placement: ${JSON.stringify(r.placement ?? null)}`);
    expect(['webgpu', 'cpu']).toContain(r.provider);
    if (r.provider === 'cpu') expect(r.fallbacks[0]?.provider).toBe('webgpu');
    else expect(r.fallbacks).toEqual([]);
    await r.session.release();
  });
});

describe('ModelRunner (worker thread)', () => {
  const spec: TinySpec = { h: 32, w: 40, mapH: 8, mapW: 10 };
  const fw = 160, fh = 128;

  for (const transport of ['transfer', 'shared'] as const) {
    it(`end to end (${transport}): known frame → known score and map; refusals`, async () => {
      const manifest = manifestFor(spec);
      const dir = writePackage(tinyModel(spec), manifest);
      const runner = await ModelRunner.create({ packageDir: dir, frame: { width: fw, height: fh }, providers: ['cuda', 'cpu'], intraOpNumThreads: 1, warmupRuns: 2, logger: log, transport });
      try {
        expect(runner.provider).toBe('cpu');
        expect(runner.fallbacks.map((f) => f.provider)).toEqual(['cuda']);
        expect([runner.modelName, runner.modelVersion, runner.mapWidth, runner.mapHeight, runner.threshold]).toEqual(['tiny', '0.0.1', 10, 8, 0.5]);
        for (const seed of [5, 6]) {
          const frame = Buffer.from(makeFrame(fw, fh, seed));
          const r = await runner.infer(frame);
          const ref = jsTiny(jsPreprocess(frame, fw, fh, manifest, 'area'), spec);
          expect(Math.abs(r.score - ref.score)).toBeLessThan(1e-5);
          expect(maxAbsDiff(r.map, ref.map)).toBeLessThan(1e-5);
          expect(r.inferenceMs).toBeGreaterThan(0);
          expect(r.map).toBe(runner.map);
          expect(Array.from(runner.copyMap())).toEqual(Array.from(r.map));
        }
        await expect(runner.infer(new Uint8Array(fw * fh - 1))).rejects.toMatchObject({ code: 'INSPECTOR_FRAME_SHAPE_MISMATCH' });
        const first = runner.infer(makeFrame(fw, fh, 7));
        await expect(runner.infer(makeFrame(fw, fh, 8))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_BUSY' });
        const ok: InferResult = await first;
        expect(Number.isFinite(ok.score)).toBe(true);
        const bench = await runner.benchBare(20);
        expect(bench.samples).toHaveLength(20);
        expect(bench.p99).toBeGreaterThanOrEqual(bench.p50);
      } finally {
        await runner.close();
      }
      await expect(runner.infer(makeFrame(fw, fh))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_CLOSED' });
    });
  }

  it("['bogus'] providers are a config error before any worker starts", async () => {
    const dir = writePackage(tinyModel(spec), manifestFor(spec));
    await expect(ModelRunner.create({ packageDir: dir, frame: { width: fw, height: fh }, providers: ['bogus'], intraOpNumThreads: 1, warmupRuns: 1, logger: log }))
      .rejects.toMatchObject({ code: 'INSPECTOR_CONFIG_INVALID' });
  });

  it('a dead worker fails the pending and later calls and emits error', async () => {
    const dir = writePackage(tinyModel(spec), manifestFor(spec));
    const runner = await ModelRunner.create({ packageDir: dir, frame: { width: fw, height: fh }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    const errored = new Promise<Error>((resolve) => runner.once('error', resolve));
    runner.simulateWorkerCrash();
    expect(await errored).toMatchObject({ code: 'INSPECTOR_INFERENCE_WORKER_EXITED' });
    await expect(runner.infer(makeFrame(fw, fh))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_WORKER_EXITED' });
    await runner.close();
  });
});

