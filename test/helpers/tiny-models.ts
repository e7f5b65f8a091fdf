/**
 * Models, packages and JS references for the inference tests (test/inference.test.ts): tiny
 * ONNX models built with onnx-graph.ts (an average-pool map model and a seeded CNN), their
 * manifests, deterministic frames, the JS area/bilinear resizes the compiled preprocessing
 * must equal, and a bare onnxruntime session run.
 */
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { Manifest } from '../../inspector/inference/manifest-schema.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../../inspector/inference/onnx-graph.js';

// ---------------------------------------------------------------- models and manifests

/** mulberry32: seeded uniform [0,1) */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinySpec {
  h: number; w: number; mapH: number; mapW: number;
  inputName?: string; scoreName?: string; mapName?: string; nan?: boolean;
}

/** image [1,1,h,w] → AveragePool to the map size → Sigmoid = map; ReduceMax = score [1]. */
export function tinyModel(s: TinySpec): Uint8Array {
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
export function cnnModel(h: number, w: number, seed = 7, opset = 13): Uint8Array {
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

export function manifestFor(s: TinySpec, over: Partial<Manifest['input']> = {}): Manifest {
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

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------- JS references

/** Deterministic test frame. */
export function makeFrame(w: number, h: number, seed = 1): Uint8Array {
  const r = rng(seed);
  const f = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) f[y * w + x] = Math.min(255, Math.floor((x * 3 + y * 2) % 200 + r() * 55));
  return f;
}

export function areaResize(src: Uint8Array, fw: number, fh: number, w: number, h: number): Float32Array {
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
export function linearResize(src: Uint8Array, fw: number, fh: number, w: number, h: number): Float32Array {
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

export function jsPreprocess(frame: Uint8Array, fw: number, fh: number, m: Manifest, kind: 'area' | 'linear' | 'none'): Float32Array {
  const [, , h, w] = m.input.shape;
  const x = kind === 'none' ? Float32Array.from(frame) : kind === 'area' ? areaResize(frame, fw, fh, w, h) : linearResize(frame, fw, fh, w, h);
  const { scale, mean, std } = m.input.normalisation;
  return x.map((v) => (v * scale - mean[0]!) / std[0]!);
}

/** The tiny model in JS. */
export function jsTiny(x: Float32Array, s: TinySpec): { score: number; map: Float32Array } {
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

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

export async function runSession(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}
