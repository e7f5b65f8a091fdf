/**
 * Undistortion as a precomputed lookup table, folded into the station's
 * resize step.
 *
 * The OpenCV binding has no remap/initUndistortRectifyMap, and a full-frame
 * remap of 1280x1024 would cost milliseconds anyway. The station first bins the
 * frame by 4 (area-binning.ts) to the model's 320x256 input, so undistortion is
 * done there: for every OUTPUT pixel of the small image the table holds where
 * that ideal (distortion-free) ray lands in the binned distorted image, as the
 * index of the top-left neighbour (Int32) and its two bilinear fractions as
 * 15-bit fixed point packed in one Uint32. Applying it is four loads and three
 * lerps per output pixel, no allocation (8 bytes of table per pixel: measured
 * ~1.5x faster than two Float32 fraction arrays).
 *
 * Geometry: output pixel (i, j) of an image binned by (fx, fy) covers full-frame
 * pixel centre U = (i + ½)·fx − ½; the ideal camera is the calibrated one
 * without distortion (same K), so U → normalised → distorted → full-frame pixel
 * → binned coordinate b = (Ud + ½)/fx − ½. Rays that leave the image repeat the
 * border (clamped), like BORDER_REPLICATE.
 */
import { type CameraModel, distortNormalized } from './camera-model.js';

const W_ONE = 32768;
const W_SCALE = 1 / W_ONE;

export interface UndistortLut {
  /** output (= binned input) size */
  width: number;
  height: number;
  /** index of the top-left source neighbour per output pixel */
  index: Int32Array;
  /** bilinear fractions per output pixel, ×32768: x in the low 16 bits, y in the high 16 */
  weights: Uint32Array;
  /** output pixels whose ray falls outside the frame (clamped to the border) */
  outside: number;
}

/**
 * Build the table for frames of `frame` size binned by `factorX`×`factorY`
 * (1×1: the full frame). The camera model is in full-frame pixels.
 */
export function buildUndistortLut(cam: CameraModel, frame: { width: number; height: number }, factorX = 1, factorY = factorX): UndistortLut {
  const width = Math.floor(frame.width / factorX);
  const height = Math.floor(frame.height / factorY);
  const n = width * height;
  const index = new Int32Array(n);
  const weights = new Uint32Array(n);
  const d = { x: 0, y: 0 };
  let outside = 0;
  for (let j = 0; j < height; j++) {
    const V = (j + 0.5) * factorY - 0.5;
    for (let i = 0; i < width; i++) {
      const U = (i + 0.5) * factorX - 0.5;
      distortNormalized(cam, (U - cam.cx) / cam.fx, (V - cam.cy) / cam.fy, d);
      const bx = (d.x * cam.fx + cam.cx + 0.5) / factorX - 0.5;
      const by = (d.y * cam.fy + cam.cy + 0.5) / factorY - 0.5;
      if (bx < -0.5 || by < -0.5 || bx > width - 0.5 || by > height - 0.5) outside++;
      const cx = Math.min(Math.max(bx, 0), width - 1);
      const cy = Math.min(Math.max(by, 0), height - 1);
      const x0 = Math.min(Math.floor(cx), width - 2);
      const y0 = Math.min(Math.floor(cy), height - 2);
      const k = j * width + i;
      index[k] = y0 * width + x0;
      weights[k] = (Math.round((cx - x0) * W_ONE) | (Math.round((cy - y0) * W_ONE) << 16)) >>> 0;
    }
  }
  return { width, height, index, weights, outside };
}

/** Undistort a float image (e.g. the normalised, binned model input) through the table. */
export function remapF32(src: Float32Array, lut: UndistortLut, out: Float32Array): void {
  const { index, weights, width } = lut;
  const n = index.length;
  for (let k = 0; k < n; k++) {
    const i = index[k]!;
    const a = src[i]!;
    const b = src[i + 1]!;
    const c = src[i + width]!;
    const e = src[i + width + 1]!;
    const w = weights[k]!;
    const fx = (w & 0xffff) * W_SCALE;
    const top = a + (b - a) * fx;
    const bot = c + (e - c) * fx;
    out[k] = top + (bot - top) * (w >>> 16) * W_SCALE;
  }
}

/** Undistort an 8-bit image through the table (full-frame tables: previews, the graph path). */
export function remapU8(src: Uint8Array, lut: UndistortLut, out: Uint8Array): void {
  const { index, weights, width } = lut;
  const n = index.length;
  for (let k = 0; k < n; k++) {
    const i = index[k]!;
    const a = src[i]!;
    const b = src[i + 1]!;
    const c = src[i + width]!;
    const e = src[i + width + 1]!;
    const w = weights[k]!;
    const fx = (w & 0xffff) * W_SCALE;
    const top = a + (b - a) * fx;
    const bot = c + (e - c) * fx;
    out[k] = (top + (bot - top) * (w >>> 16) * W_SCALE + 0.5) | 0;
  }
}

/**
 * Time `runs` applications of a binned table on a synthetic input (ms per run, in order), with
 * `apply` (default remapF32; the benchmark passes the WebAssembly remap the station uses).
 */
export function benchRemap(lut: UndistortLut, runs: number,
  apply: (src: Float32Array, out: Float32Array) => void = (src, out) => remapF32(src, lut, out)): number[] {
  const src = new Float32Array(lut.width * lut.height);
  for (let i = 0; i < src.length; i++) src[i] = ((i * 2654435761) >>> 24) / 255;
  const out = new Float32Array(src.length);
  for (let i = 0; i < 50; i++) apply(src, out); // warm the JIT
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    apply(src, out);
    samples.push(performance.now() - t);
  }
  return samples;
}
