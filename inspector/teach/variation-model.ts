/**
 * The variation model of classic print inspection: a per-pixel reference
 * (mean of the aligned good images) and a per-pixel tolerance, both in grey
 * levels at the model's input resolution.
 *
 *  - many images: tol = k·std + floor + edgeGain·edge
 *  - one image:   tol = singleFloor + singleEdgeGain·edge
 * where `edge` is the Sobel gradient magnitude of the reference, dilated, so
 * that an edge that lands a fraction of a pixel away (registration residual,
 * sampling phase) does not fire, while flat areas stay tight.
 *
 * OpenCV (sobel, dilate, gaussianBlur) runs here: teaching happens off the
 * station's hot path (CLI, worker, eval).
 */
import { cv } from '../core/opencv.js';

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
}

export const DEFAULT_VARIATION: VariationParams = { k: 2.5, floor: 2, singleFloor: 6, edgeGain: 0.3, singleEdgeGain: 1.0, edgeDilatePx: 1 };

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
  const m = new cv.Mat(Buffer.from(img.buffer, img.byteOffset, img.byteLength), height, width, cv.CV_32FC1);
  const gx = m.sobel(cv.CV_32F, 1, 0, 3).getData();
  const gy = m.sobel(cv.CV_32F, 0, 1, 3).getData();
  const fx = new Float32Array(gx.buffer, gx.byteOffset, width * height);
  const fy = new Float32Array(gy.buffer, gy.byteOffset, width * height);
  const magBuf = Buffer.alloc(width * height * 4);
  const mag = new Float32Array(magBuf.buffer, magBuf.byteOffset, width * height);
  for (let i = 0; i < mag.length; i++) mag[i] = Math.hypot(fx[i]!, fy[i]!) / 8;
  if (radius <= 0) return mag;
  const k = cv.getStructuringElement(cv.MORPH_RECT, new cv.Size(2 * radius + 1, 2 * radius + 1));
  const d = new cv.Mat(magBuf, height, width, cv.CV_32FC1).dilate(k).getData();
  return new Float32Array(new Float32Array(d.buffer, d.byteOffset, width * height));
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
    for (let i = 0; i < n; i++) tol[i] = params.singleFloor + params.singleEdgeGain * edge[i]!;
  } else {
    const m = images.length;
    for (let i = 0; i < n; i++) {
      const mu = sum[i]! / m;
      const std = Math.sqrt(Math.max(0, (sum2[i]! - m * mu * mu) / (m - 1)));
      tol[i] = params.k * std + params.floor + params.edgeGain * edge[i]!;
    }
  }
  return { width, height, mean, tol, images: images.length };
}
