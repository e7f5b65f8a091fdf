/**
 * The variation model as an ONNX graph, built in TypeScript (onnx-graph.ts):
 *
 *   x  float32 [1,1,H,W]  the normalised input, x = (pixel/255 − m)/s (manifest normalisation)
 *   g  = x·(255·s) + 255·m                      back to grey levels
 *   r  = a·(mean − m̄) + ḡ                       reference fitted to the frame's gain and level
 *                                                (a = least squares over the image: lighting drift)
 *   e  = Relu(|g − r| − tol)                    excess over the per-pixel tolerance
 *   [localShiftPx R > 0: g is taken at every shift in [−R, R]² (Pad edge + Slice, stacked as channels);
 *    per B×B block the shift with the least excess over the 2B×2B window around it wins, and e is that
 *    shift's excess: local alignment for contours a few pixels off (separately scanned/binarised images)]
 *   [openSizePx k > 1: e = opening by a k×k square (MaxPool of −e, then MaxPool): slivers < k px wide vanish]
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
  /** local alignment: try every shift of the frame within ±localShiftPx (0 = off) and keep, per block, the best one */
  localShiftPx?: number;
  /** block size of the local alignment, input pixels (divides H and W; the block's score window is 2× it) */
  localShiftBlockPx?: number;
  /** morphological opening of the excess by a k×k square (0 or 1 = off): features narrower than k pixels vanish */
  openSizePx?: number;
}

export const SCORE_OUTPUT = 'score';
export const MAP_OUTPUT = 'anomaly_map';

export function buildVariationGraph(model: VariationModel, o: VariationGraphOptions): { bytes: Uint8Array; mapShape: [1, 1, number, number] } {
  const { width: W, height: H } = model;
  if (o.smoothPx < 1 || o.smoothPx % 2 !== 1) throw new RangeError(`smoothPx ${o.smoothPx} must be odd and >= 1`);
  if (W % o.mapPool !== 0 || H % o.mapPool !== 0) throw new RangeError(`mapPool ${o.mapPool} does not divide ${W}x${H}`);
  const R = o.localShiftPx ?? 0;
  const B = o.localShiftBlockPx ?? 32;
  if (!Number.isInteger(R) || R < 0 || R > 8) throw new RangeError(`localShiftPx ${R} must be an integer in 0..8`);
  if (R > 0 && (!Number.isInteger(B) || B < 2 || B % 2 !== 0 || W % B !== 0 || H % B !== 0)) {
    throw new RangeError(`localShiftBlockPx ${B} must be even and divide ${W}x${H}`);
  }
  const op = o.openSizePx ?? 0;
  if (!Number.isInteger(op) || op < 0) throw new RangeError(`openSizePx ${op} must be a non-negative integer`);
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
  const frames = R > 0 ? shiftedFrames(g, grey, H, W, R) : grey;
  const diff = g.op('Sub', [frames, pred]);
  const abs = g.op('Abs', [diff]);
  const over = g.op('Sub', [abs, g.constF32('tolerance', shape, model.tol)]);
  let excess = g.op('Relu', [over], {}, 'excess');
  if (R > 0) excess = bestShiftPerBlock(g, excess, H, W, R, B);
  if (op > 1) {
    // opening: erosion (min = −MaxPool(−e)) then dilation (MaxPool) by the same k×k square; for an even k
    // the erosion's window reaches one pixel further forward and the dilation's one further back
    const lo = Math.floor((op - 1) / 2);
    const hi = op - 1 - lo;
    const base = { kernel_shape: attr.ints([op, op]), strides: attr.ints([1, 1]) };
    const eroded = g.op('Neg', [g.op('MaxPool', [g.op('Neg', [excess])], { ...base, pads: attr.ints([lo, lo, hi, hi]) })], {}, 'excess_eroded');
    excess = g.op('MaxPool', [eroded], { ...base, pads: attr.ints([hi, hi, lo, lo]) }, 'excess_opened');
  }
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

/** The frame shifted by every (dx, dy) in [−R, R]² (edge pixels repeated), stacked as channels: [1, (2R+1)², H, W]. */
function shiftedFrames(g: GraphBuilder, grey: string, H: number, W: number, R: number): string {
  const padded = g.op('Pad', [grey, g.constI64('shift_pads', [8], [0, 0, R, R, 0, 0, R, R])], { mode: attr.string('edge') }, 'grey_padded');
  const axes = g.constI64('shift_axes', [2], [2, 3]);
  const parts: string[] = [];
  for (let dy = -R; dy <= R; dy++) {
    for (let dx = -R; dx <= R; dx++) {
      const starts = g.constI64('shift_start', [2], [R + dy, R + dx]);
      const ends = g.constI64('shift_end', [2], [R + dy + H, R + dx + W]);
      parts.push(g.op('Slice', [padded, starts, ends, axes], {}, 'grey_shifted'));
    }
  }
  return g.op('Concat', parts, { axis: attr.int(1) }, 'grey_shifts');
}

/**
 * Local alignment: per B×B block, the shift whose excess summed over the 2B×2B
 * window around the block is least (ties: the smallest shift), and that
 * shift's excess in the block. Contours that land a few pixels off (separately
 * scanned/binarised images, slight scale or warp) are absorbed; a compact
 * defect adds about the same excess to every shift, so it stays.
 */
function bestShiftPerBlock(g: GraphBuilder, excess: string, H: number, W: number, R: number, B: number): string {
  const S = (2 * R + 1) ** 2;
  const h = H / B;
  const w = W / B;
  const blockScore = g.op('AveragePool', [excess], {
    kernel_shape: attr.ints([2 * B, 2 * B]), strides: attr.ints([B, B]), pads: attr.ints([B / 2, B / 2, B / 2, B / 2]), count_include_pad: attr.int(1),
  }, 'block_score');
  // tie-break towards the unshifted frame: + 0.01 grey levels per pixel of shift
  const penalty = new Float32Array(S);
  for (let dy = -R, i = 0; dy <= R; dy++) for (let dx = -R; dx <= R; dx++, i++) penalty[i] = 0.01 * (Math.abs(dx) + Math.abs(dy));
  const scored = g.op('Add', [blockScore, g.constF32('shift_penalty', [1, S, 1, 1], penalty)]);
  const best = g.op('ReduceMin', [scored], { axes: attr.ints([1]), keepdims: attr.int(1) }, 'block_best');
  // 0 for the best shift of a block, ≥ 0.01·1e5 = 1000 grey levels for the others (excess is at most 255)
  const loser = g.op('Mul', [g.op('Sub', [scored, best]), g.constF32('loser_gain', [], [1e5])], {}, 'block_loser');
  // blocks → pixels: [1,S,h,w] → [S,h,1,w,1] → expand [S,h,B,w,B] → [1,S,H,W]
  const r5 = g.op('Reshape', [loser, g.constI64('up_shape5', [5], [S, h, 1, w, 1])]);
  const ex = g.op('Expand', [r5, g.constI64('up_expand', [5], [S, h, B, w, B])]);
  const up = g.op('Reshape', [ex, g.constI64('up_shape4', [4], [1, S, H, W])], {}, 'loser_pixels');
  return g.op('ReduceMin', [g.op('Add', [excess, up])], { axes: attr.ints([1]), keepdims: attr.int(1) }, 'excess_aligned');
}
