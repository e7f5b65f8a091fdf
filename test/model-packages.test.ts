/**
 * Model package contract v2: every incomplete or inconsistent package is
 * refused with its own code before anything loads; v1 stays loadable; the
 * classification kind runs (score, no map). Real onnxruntime-node, real files.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { loadModelPackage, manifestProblems } from '../inspector/inference/model-package.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';
import { PROVIDER_OPS, unsupportedOps } from '../inspector/inference/provider-ops.js';
import { decodeModel } from '../inspector/inference/onnx-graph.js';

const log = logger.child({ mod: 'model-packages-test' });
const work = mkdtempSync(join(tmpdir(), 'inspector-packages-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

const H = 32, W = 32, MH = 4, MW = 4;

/** image → AveragePool → Sigmoid = map [1,1,4,4]; ReduceMax = score [1]; `extra` splices ops in before the Sigmoid. */
function mapModel(extra?: (g: GraphBuilder, x: string) => string): Uint8Array {
  const g = new GraphBuilder('tiny');
  g.input('image', 'float32', [1, 1, H, W]);
  let x = g.op('AveragePool', ['image'], { kernel_shape: attr.ints([H / MH, W / MW]), strides: attr.ints([H / MH, W / MW]) });
  if (extra) x = extra(g, x);
  g.node('Sigmoid', [x], ['anomaly_map']);
  g.node('ReduceMax', ['anomaly_map'], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('anomaly_map', 'float32', [1, 1, MH, MW]);
  return encodeModel(createModel(g.build()));
}

/** image → GlobalAveragePool → [1,1] → Concat(1-p, p) softmax-free probabilities [1,2]; score = p. */
function classifierModel(): Uint8Array {
  const g = new GraphBuilder('cls');
  g.input('image', 'float32', [1, 1, H, W]);
  const pooled = g.op('GlobalAveragePool', ['image']);
  const flat = g.op('Reshape', [pooled, g.constI64('shape', [2], [1, 1])]);
  const p = g.op('Sigmoid', [flat]);
  const q = g.op('Sub', [g.constF32('one', [1, 1], [1]), p]);
  g.node('Concat', [q, p], ['probabilities'], { axis: attr.int(1) });
  g.node('Reshape', [p, g.constI64('score_shape', [1], [1])], ['score']);
  g.output('score', 'float32', [1]);
  g.output('probabilities', 'float32', [1, 2]);
  return encodeModel(createModel(g.build()));
}

function manifestV2(over: Partial<Manifest> = {}): Manifest {
  return {
    schemaVersion: 2, name: 'tiny', version: '1.0.0',
    input: { name: 'image', shape: [1, 1, H, W], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] } },
    outputs: { kind: 'anomaly_map', score: { name: 'score', shape: [1] }, map: { name: 'anomaly_map', shape: [1, 1, MH, MW] },
      classes: ['good', 'defect'], defectClasses: ['defect'] },
    decision: { threshold: 0.5, classThresholds: { defect: 0.6 }, minDefectAreaPx: 0 },
    training: { data: 'synthetic (test/model-packages.test.ts)', script: 'test/model-packages.test.ts', command: 'vitest' },
    sha256: '',
    ...over,
  };
}

/** Write a package; the model hash is filled in unless the manifest already has one. */
function writePackage(model: Uint8Array, manifest: Manifest | string, files: Record<string, string> = {}): string {
  const dir = join(work, `pkg${++n}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.onnx'), model);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  const text = typeof manifest === 'string' ? manifest
    : JSON.stringify({ ...manifest, sha256: manifest.sha256 || sha(model) }, null, 2);
  writeFileSync(join(dir, 'manifest.json'), text);
  return dir;
}

const runner = (dir: string, providers: string[] = ['cpu']): Promise<ModelRunner> => ModelRunner.create({
  packageDir: dir, frame: { width: W, height: H }, providers, intraOpNumThreads: 1, warmupRuns: 2, logger: log,
});

describe('valid packages load', () => {
  it('the shipped v1 package (models/default/1.0.0) still loads', async () => {
    const pkg = await loadModelPackage('models/default/1.0.0');
    expect(pkg.manifest.schemaVersion).toBe(1);
    expect(pkg.manifest.outputs.map?.shape).toEqual([1, 1, 32, 40]);
  });

  it('a v2 anomaly_map package with a hashed extra file and per-class thresholds loads', async () => {
    const dir = writePackage(mapModel(), manifestV2({ files: ['reference.png'], sha256s: { 'reference.png': sha('png bytes') },
      registration: { reference: 'reference.png', maxShiftPx: 8, maxRotationDeg: 2, minQuality: 0.5 } }), { 'reference.png': 'png bytes' });
    const pkg = await loadModelPackage(dir, { providers: ['cpu'] });
    expect(pkg.manifest.decision.classThresholds).toEqual({ defect: 0.6 });
    expect(pkg.providers).toEqual(['cpu']);
  });

  it('a classification package (probabilities, no map) runs: a score per frame and an empty map', async () => {
    const dir = writePackage(classifierModel(), manifestV2({
      outputs: { kind: 'classification', score: { name: 'score', shape: [1] }, probabilities: { name: 'probabilities', shape: [1, 2] },
        classes: ['good', 'defect'], defectClasses: ['defect'] },
    }));
    const r = await runner(dir);
    try {
      expect(r.mapWidth * r.mapHeight).toBe(0);
      const bright = await r.infer(new Uint8Array(W * H).fill(255));
      const dark = await r.infer(new Uint8Array(W * H).fill(0));
      // (255/255 - 0.5)/0.25 = 2 → sigmoid 0.881; (0 - 0.5)/0.25 = -2 → 0.119
      expect(bright.score).toBeCloseTo(1 / (1 + Math.exp(-2)), 4);
      expect(dark.score).toBeCloseTo(1 / (1 + Math.exp(2)), 4);
    } finally {
      await r.close();
    }
  });
});

describe('incomplete or inconsistent packages are refused with their code', () => {
  it('missing model.onnx → INSPECTOR_MODEL_PACKAGE_MISSING', async () => {
    const dir = writePackage(mapModel(), manifestV2());
    rmSync(join(dir, 'model.onnx'));
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_PACKAGE_MISSING' });
  });

  it('a listed extra file that is missing → INSPECTOR_MODEL_PACKAGE_MISSING', async () => {
    const dir = writePackage(mapModel(), manifestV2({ files: ['reference.png'], sha256s: { 'reference.png': sha('x') } }));
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_PACKAGE_MISSING', message: expect.stringMatching(/reference\.png/) });
  });

  it('model.onnx whose hash differs from the manifest → INSPECTOR_MODEL_HASH_MISMATCH', async () => {
    const dir = writePackage(mapModel(), manifestV2({ sha256: sha('something else') }));
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH' });
  });

  it('an extra file whose hash differs → INSPECTOR_MODEL_HASH_MISMATCH', async () => {
    const dir = writePackage(mapModel(), manifestV2({ files: ['reference.png'], sha256s: { 'reference.png': sha('original') } }),
      { 'reference.png': 'tampered' });
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH', message: expect.stringMatching(/reference\.png/) });
  });

  const badManifests: Array<[string, (m: Manifest) => unknown]> = [
    ['unknown schema version', (m) => ({ ...m, schemaVersion: 3 })],
    ['no training provenance', (m) => { const { training: _t, ...rest } = m; return rest; }],
    ['classification with a map', (m) => ({ ...m, outputs: { ...m.outputs, kind: 'classification', probabilities: { name: 'p', shape: [1, 2] } } })],
    ['anomaly_map without a map', (m) => { const { map: _m, ...o } = m.outputs; return { ...m, outputs: o }; }],
    ['a class threshold for a class that does not exist', (m) => ({ ...m, decision: { ...m.decision, classThresholds: { scratch: 0.4 } } })],
    ['a defect class that is not a class', (m) => ({ ...m, outputs: { ...m.outputs, defectClasses: ['dent'] } })],
    ['an extra file without a hash', (m) => ({ ...m, files: ['reference.png'] })],
    ['a registration reference not listed in files', (m) => ({ ...m, registration: { reference: 'ref.png', maxShiftPx: 1, maxRotationDeg: 1, minQuality: 0.5 } })],
    ['a threshold above 1', (m) => ({ ...m, decision: { ...m.decision, threshold: 1.5 } })],
    ['registration on a letterbox input', (m) => ({ ...m, input: { ...m.input, resize: 'letterbox' }, files: ['ref.png'], sha256s: { 'ref.png': sha('r') },
      registration: { reference: 'ref.png', maxShiftPx: 1, maxRotationDeg: 1, minQuality: 0.5 } })],
  ];
  for (const [what, mutate] of badManifests) {
    it(`manifest with ${what} → INSPECTOR_MODEL_MANIFEST_INVALID`, async () => {
      const model = mapModel();
      const dir = writePackage(model, JSON.stringify(mutate(manifestV2({ sha256: sha(model) }))));
      await expect(loadModelPackage(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_MANIFEST_INVALID' });
    });
  }

  it('manifest that is not JSON → INSPECTOR_MODEL_MANIFEST_INVALID', async () => {
    await expect(loadModelPackage(writePackage(mapModel(), '{ "schemaVersion": 2,'))).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_MANIFEST_INVALID' });
  });

  it('problems are listed with their paths', () => {
    const m = manifestV2({ sha256: 'a'.repeat(64), decision: { threshold: 0.5, classThresholds: { scratch: 0.4 }, minDefectAreaPx: 0 } });
    expect(manifestProblems(m)).toEqual(["/decision/classThresholds: 'scratch' is not in classes"]);
  });

  it('input name or shape that the graph does not have → INSPECTOR_MODEL_CONTRACT_MISMATCH', async () => {
    const base = manifestV2();
    await expect(loadModelPackage(writePackage(mapModel(), { ...base, input: { ...base.input, name: 'pixels' } })))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH', message: expect.stringMatching(/input 'pixels'/) });
    await expect(loadModelPackage(writePackage(mapModel(), { ...base, input: { ...base.input, shape: [1, 1, 64, 64] } })))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH' });
  });

  it('output shape or a declared output the graph lacks → INSPECTOR_MODEL_CONTRACT_MISMATCH', async () => {
    const base = manifestV2();
    await expect(loadModelPackage(writePackage(mapModel(), { ...base, outputs: { ...base.outputs, map: { name: 'anomaly_map', shape: [1, 1, 8, 8] } } })))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH', message: expect.stringMatching(/map output/) });
    const cls = { ...base, outputs: { kind: 'classification' as const, score: { name: 'score', shape: [1] }, probabilities: { name: 'probs', shape: [1, 2] },
      classes: ['good', 'defect'], defectClasses: ['defect'] } };
    await expect(loadModelPackage(writePackage(classifierModel(), cls)))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_CONTRACT_MISMATCH', message: expect.stringMatching(/probabilities output 'probs'/) });
  });

  it('an op the chosen provider does not run → INSPECTOR_MODEL_UNSUPPORTED_OP, before any session', async () => {
    // Einsum (identity equation) is run by the CPU and CUDA providers but is not on the webgpu list
    const model = mapModel((g, x) => g.op('Einsum', [x], { equation: attr.string('nchw->nchw') }));
    expect(PROVIDER_OPS.webgpu.ops).not.toContain('Einsum');
    expect(unsupportedOps(decodeModel(model), 'webgpu')).toEqual(['Einsum']);
    expect(unsupportedOps(decodeModel(model), 'cpu')).toEqual([]);
    const dir = writePackage(model, manifestV2());
    await expect(loadModelPackage(dir, { providers: ['webgpu'] }))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_UNSUPPORTED_OP', message: expect.stringMatching(/webgpu: Einsum/) });
    await expect(runner(dir, ['webgpu'])).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_UNSUPPORTED_OP' });
    // with a fallback in the list the provider is skipped, recorded like any other fallback
    const pkg = await loadModelPackage(dir, { providers: ['webgpu', 'cpu'] });
    expect(pkg.providers).toEqual(['cpu']);
    const r = await runner(dir, ['webgpu', 'cpu']);
    try {
      expect(r.provider).toBe('cpu');
      expect(r.fallbacks[0]).toMatchObject({ provider: 'webgpu', reason: expect.stringMatching(/Einsum/) });
    } finally {
      await r.close();
    }
  });

  it('an op the CPU provider has no kernel for (as onnxruntime reports it) → INSPECTOR_MODEL_UNSUPPORTED_OP', async () => {
    // Erf is valid ONNX for float64, but onnxruntime's CPU provider has a float32 kernel only
    const model = mapModel((g, x) => g.op('Cast', [g.op('Erf', [g.op('Cast', [x], { to: attr.int(11) })])], { to: attr.int(1) }));
    const dir = writePackage(model, manifestV2());
    await expect(runner(dir, ['cpu'])).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_UNSUPPORTED_OP', message: expect.stringMatching(/Erf/) });
  });

  it('a model whose output is NaN → INSPECTOR_MODEL_OUTPUT_INVALID at warm-up', async () => {
    const dir = writePackage(mapModel((g, x) => g.op('Mul', [x, g.constF32('nan', [], [Number.NaN])])), manifestV2());
    await expect(runner(dir)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_OUTPUT_INVALID' });
  });
});

describe('the shipped manifest is v1 and its v2 form is valid', () => {
  it('upgrading models/default/1.0.0 to schemaVersion 2 needs no other change', () => {
    const m = JSON.parse(readFileSync('models/default/1.0.0/manifest.json', 'utf8')) as Manifest;
    expect(manifestProblems({ ...m, schemaVersion: 2 })).toEqual([]);
  });
});
