/**
 * The variation model of classic print inspection: a per-pixel reference
 * (mean of the aligned good images) and a per-pixel tolerance, both in grey
 * levels at the model's input resolution.
 *
 *  - many images: tol = k·std + floor + edgeGain·edge
 *  - one image:   tol = singleFloor + singleEdgeGain·edge; or, with singleRangePx > 0
 *    (off by default: on DeepPCB it hid opens and shorts), the reference's local range: with lo/hi the min/max of the
 *    image over a (2·singleRangePx+1)² window, mean = (lo+hi)/2 and
 *    tol = (hi−lo)/2 + singleFloor + singleEdgeGain·edge, i.e. a pixel may take
 *    any value its neighbourhood takes in the golden image (an edge that lands
 *    a fraction of a pixel away, as binarised PCB tracks do, is no defect),
 *    plus a margin; flat areas stay tight.
 * and, with borderPx > 0, an unlimited tolerance within borderPx of the image border;
 * where `edge` is the Sobel gradient magnitude of the reference, dilated, so
 * that an edge that lands a fraction of a pixel away (registration residual,
 * sampling phase) does not fire, while flat areas stay tight.
 *
 * Plain JS (3x3 Sobel with reflected borders like OpenCV's default, a
 * rectangular max filter): no OpenCV, so teaching can run in any thread.
 */

export interface VariationParams {
  /** std multiplier (many images) */
  k: number;
  /** tolerance everywhere, grey levels (many images) */
  floor: number;
  /** tolerance everywhere, grey levels, when learning from one image (covers sensor noise and lighting) */
  singleFloor: number;
  /** tolerance per unit of (Sobel magnitude / 8) when learning from many images */
  edgeGain: number;
  /** tolerance per unit of (Sobel magnitude / 8) when learning from one image */
  singleEdgeGain: number;
  /** dilation radius of the edge map, pixels */
  edgeDilatePx: number;
  /** one image: radius of the local min/max window (0 = off: mean = the image, tol from floor and edge only) */
  singleRangePx: number;
  /** pixels this close to the image border get an unlimited tolerance (0 = off): warping repeats the border row */
  borderPx: number;
}

export const DEFAULT_VARIATION: VariationParams = {
  k: 2.5, floor: 2, singleFloor: 6, edgeGain: 0.3, singleEdgeGain: 1.0, edgeDilatePx: 1, singleRangePx: 0, borderPx: 0,
};

export interface VariationModel {
  width: number;
  height: number;
  /** grey levels 0..255 */
  mean: Float32Array;
  /** grey levels, > 0 */
  tol: Float32Array;
  images: number;
}

/** Sobel magnitude / 8 (≈ grey levels per pixel), dilated by `radius` (max filter). */
export function edgeStrength(img: Float32Array, width: number, height: number, radius: number): Float32Array {
  const mag = new Float32Array(width * height);
  // BORDER_REFLECT_101: index −1 → 1, n → n − 2
  const rx = (x: number): number => (x < 0 ? Math.min(1, width - 1) : x >= width ? Math.max(0, width - 2) : x);
  const ry = (y: number): number => (y < 0 ? Math.min(1, height - 1) : y >= height ? Math.max(0, height - 2) : y);
  for (let y = 0; y < height; y++) {
    const up = ry(y - 1) * width;
    const mid = y * width;
    const dn = ry(y + 1) * width;
    for (let x = 0; x < width; x++) {
      const l = rx(x - 1);
      const r = rx(x + 1);
      const gx = (img[up + r]! - img[up + l]!) + 2 * (img[mid + r]! - img[mid + l]!) + (img[dn + r]! - img[dn + l]!);
      const gy = (img[dn + l]! - img[up + l]!) + 2 * (img[dn + x]! - img[up + x]!) + (img[dn + r]! - img[up + r]!);
      mag[mid + x] = Math.hypot(gx, gy) / 8;
    }
  }
  if (radius <= 0) return mag;
  // separable max filter (2r+1)², pixels outside the image ignored (OpenCV dilate's default border)
  const tmp = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let m = -Infinity;
      for (let k = Math.max(0, x - radius); k <= Math.min(width - 1, x + radius); k++) m = Math.max(m, mag[y * width + k]!);
      tmp[y * width + x] = m;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let m = -Infinity;
      for (let k = Math.max(0, y - radius); k <= Math.min(height - 1, y + radius); k++) m = Math.max(m, tmp[k * width + x]!);
      mag[y * width + x] = m;
    }
  }
  return mag;
}

/** Min or max over a (2r+1)² window (separable; pixels outside the image ignored). */
export function localExtreme(img: Float32Array, width: number, height: number, r: number, pick: (a: number, b: number) => number): Float32Array {
  const tmp = new Float32Array(width * height);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let m = img[y * width + x]!;
      for (let k = Math.max(0, x - r); k <= Math.min(width - 1, x + r); k++) m = pick(m, img[y * width + k]!);
      tmp[y * width + x] = m;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let m = tmp[y * width + x]!;
      for (let k = Math.max(0, y - r); k <= Math.min(height - 1, y + r); k++) m = pick(m, tmp[k * width + x]!);
      out[y * width + x] = m;
    }
  }
  return out;
}

/** Learn mean and tolerance from aligned images (each width*height gray bytes). */
export function learnVariation(images: readonly Uint8Array[], width: number, height: number,
  params: VariationParams = DEFAULT_VARIATION): VariationModel {
  const n = width * height;
  const sum = new Float64Array(n);
  const sum2 = new Float64Array(n);
  for (const img of images) {
    for (let i = 0; i < n; i++) { const v = img[i]!; sum[i]! += v; sum2[i]! += v * v; }
  }
  const mean = new Float32Array(n);
  for (let i = 0; i < n; i++) mean[i] = sum[i]! / images.length;
  const edge = edgeStrength(mean, width, height, params.edgeDilatePx);
  const tol = new Float32Array(n);
  if (images.length === 1) {
    if (params.singleRangePx > 0) {
      const lo = localExtreme(mean, width, height, params.singleRangePx, Math.min);
      const hi = localExtreme(mean, width, height, params.singleRangePx, Math.max);
      for (let i = 0; i < n; i++) {
        mean[i] = 0.5 * (lo[i]! + hi[i]!);
        tol[i] = 0.5 * (hi[i]! - lo[i]!) + params.singleFloor + params.singleEdgeGain * edge[i]!;
      }
    } else {
      for (let i = 0; i < n; i++) tol[i] = params.singleFloor + params.singleEdgeGain * edge[i]!;
    }
  } else {
    const m = images.length;
    for (let i = 0; i < n; i++) {
      const mu = sum[i]! / m;
      const std = Math.sqrt(Math.max(0, (sum2[i]! - m * mu * mu) / (m - 1)));
      tol[i] = params.k * std + params.floor + params.edgeGain * edge[i]!;
    }
  }
  const b = params.borderPx;
  if (b > 0) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (x < b || y < b || x >= width - b || y >= height - b) tol[y * width + x] = 1e4;
      }
    }
  }
  return { width, height, mean, tol, images: images.length };
}
