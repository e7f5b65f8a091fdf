/**
 * Inference: graph builder, compiled preprocessing, model packages, provider
 * fallback and the worker-hosted runner, all against real onnxruntime-node.
 * Every model here is built in the test with onnx-graph.ts and written as a
 * real package into a temp folder (builders in helpers/tiny-models.ts): nothing depends on models/default.
 */
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
  decodeModel, describeValueInfo, readTensorF32, tensorF32,
} from '../inspector/inference/onnx-graph.js';
import { compileDeployedModel, planPreprocessing } from '../inspector/inference/preprocess-graph.js';
import { baseSessionOptions, createSessionWithFallback, profilePlacement, validateProviders } from '../inspector/inference/providers.js';
import {
  tinyModel, cnnModel, manifestFor, sha, makeFrame, jsPreprocess, jsTiny, maxAbsDiff, runSession, type TinySpec,
} from './helpers/tiny-models.js';

const log = logger.child({ mod: 'inference-test' });
const work = mkdtempSync(join(tmpdir(), 'inspector-inference-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => { const d = join(work, `pkg${++dirCount}`); mkdirSync(d); return d; };

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

