/**
 * The variation model as an ONNX graph, built in TypeScript (onnx-graph.ts):
 *
 *   x  float32 [1,1,H,W]  the normalised input, x = (pixel/255 − m)/s (manifest normalisation)
 *   g  = x·(255·s) + 255·m                      back to grey levels
 *   r  = a·(mean − m̄) + ḡ                       reference fitted to the frame's gain and level
 *                                                (a = least squares over the image: lighting drift)
 *   e  = Relu(|g − r| − tol)                    excess over the per-pixel tolerance
 *   es = AveragePool_k×k(e)                     one noisy pixel is diluted k² times; a blob is not
 *   a  = es / (es + halfLevel)                  0..1, 0.5 where the smoothed excess is halfLevel grey levels
 *   map   = MaxPool_p×p(a)  [1,1,H/p,W/p]       (p = mapPool; 1 = full input resolution)
 *   score = ReduceMax(map)  [1]
 *
 * The decision threshold 0.5 thus means "a region whose excess averages
 * halfLevel grey levels over k×k pixels". Every op is in opset 13 and runs on
 * every execution provider onnxruntime offers (CPU, CUDA, TensorRT, WebGPU).
 */
import { GraphBuilder, attr, createModel, encodeModel } from '../inference/onnx-graph.js';
import type { VariationModel } from './variation-model.js';

export interface VariationGraphOptions {
  inputName: string;
  /** manifest normalisation (gray: one value each) */
  scale: number;
  normMean: number;
  normStd: number;
  /** smoothing kernel (odd) */
  smoothPx: number;
  /** grey levels of smoothed excess that give 0.5 */
  halfLevel: number;
  /** map cell size in input pixels (divides H and W) */
  mapPool: number;
}

export const SCORE_OUTPUT = 'score';
export const MAP_OUTPUT = 'anomaly_map';

export function buildVariationGraph(model: VariationModel, o: VariationGraphOptions): { bytes: Uint8Array; mapShape: [1, 1, number, number] } {
  const { width: W, height: H } = model;
  if (o.smoothPx < 1 || o.smoothPx % 2 !== 1) throw new RangeError(`smoothPx ${o.smoothPx} must be odd and >= 1`);
  if (W % o.mapPool !== 0 || H % o.mapPool !== 0) throw new RangeError(`mapPool ${o.mapPool} does not divide ${W}x${H}`);
  const g = new GraphBuilder('variation_model');
  const shape = [1, 1, H, W];
  g.input(o.inputName, 'float32', shape);
  // grey = x * (std/scale) + mean/scale  (x = (p*scale − mean)/std)
  const toGrey = g.op('Mul', [o.inputName, g.constF32('grey_mul', [], [o.normStd / o.scale])]);
  const grey = g.op('Add', [toGrey, g.constF32('grey_add', [], [o.normMean / o.scale])], {}, 'grey');
  // photometric correction: the reference scaled and offset to the frame's global gain and level
  // (least squares a·(ref − r̄) + x̄), so a brighter or darker part is not a defect
  let rm = 0;
  for (const v of model.mean) rm += v;
  rm /= model.mean.length;
  let rv = 0;
  const centred = new Float32Array(model.mean.length);
  for (let i = 0; i < centred.length; i++) { centred[i] = model.mean[i]! - rm; rv += centred[i]! ** 2; }
  rv /= centred.length;
  const all = { axes: attr.ints([1, 2, 3]), keepdims: attr.int(1) };
  const refC = g.constF32('reference_centred', shape, centred);
  const xMean = g.op('ReduceMean', [grey], all, 'frame_mean');
  const cov = g.op('ReduceMean', [g.op('Mul', [g.op('Sub', [grey, xMean]), refC])], all, 'covariance');
  const gain = g.op('Div', [cov, g.constF32('reference_var', [], [Math.max(rv, 1e-6)])], {}, 'gain');
  const pred = g.op('Add', [g.op('Mul', [refC, gain]), xMean], {}, 'reference_fitted');
  const diff = g.op('Sub', [grey, pred]);
  const abs = g.op('Abs', [diff]);
  const over = g.op('Sub', [abs, g.constF32('tolerance', shape, model.tol)]);
  let excess = g.op('Relu', [over], {}, 'excess');
  if (o.smoothPx > 1) {
    const k = o.smoothPx;
    const p = (k - 1) / 2;
    excess = g.op('AveragePool', [excess], {
      kernel_shape: attr.ints([k, k]), strides: attr.ints([1, 1]), pads: attr.ints([p, p, p, p]), count_include_pad: attr.int(1),
    }, 'excess_smooth');
  }
  const den = g.op('Add', [excess, g.constF32('half_level', [], [o.halfLevel])]);
  const prob = g.op('Div', [excess, den], {}, 'anomaly');
  const mapShape: [1, 1, number, number] = [1, 1, H / o.mapPool, W / o.mapPool];
  if (o.mapPool > 1) {
    g.node('MaxPool', [prob], [MAP_OUTPUT], { kernel_shape: attr.ints([o.mapPool, o.mapPool]), strides: attr.ints([o.mapPool, o.mapPool]) });
  } else {
    g.node('Identity', [prob], [MAP_OUTPUT]);
  }
  g.node('ReduceMax', [MAP_OUTPUT], [SCORE_OUTPUT], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output(SCORE_OUTPUT, 'float32', [1]);
  g.output(MAP_OUTPUT, 'float32', mapShape);
  const bytes = encodeModel(createModel(g.build(), {
    opset: 13, docString: `variation model taught from ${model.images} good image(s)`,
  }));
  return { bytes, mapShape };
}
