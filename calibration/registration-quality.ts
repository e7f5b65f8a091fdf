/**
 * The registration quality score: normalised cross-correlation between the
 * reference and the image resampled through the fitted warp, over the inner
 * region (borders would hold replicated pixels) on a grid of every `stride`-th
 * pixel in each direction.
 *
 * The image is sampled bilinearly at the warped grid positions, so the score
 * needs no warped copy of the image: registering a frame never writes the
 * full-size warp, which the caller does once, into its own buffer, only when
 * the part registered (and only if it needs one). The registrar uses a
 * stride of 3 (a ninth of the pixels, about 8,000 samples at 320x256).
 *
 * Plain JS, all state computed once per reference; score() allocates nothing.
 */
import type { RigidWarp } from './lk-refine.js';

export class SampledNcc {
  private readonly x0: number;
  private readonly x1: number;
  private readonly y0: number;
  private readonly y1: number;
  private readonly refMean: number;
  private readonly refStd: number;
  private readonly n: number;

  constructor(private readonly reference: Uint8Array, readonly width: number, readonly height: number,
    margin: number, readonly stride = 2) {
    this.x0 = margin; this.x1 = width - margin; this.y0 = margin; this.y1 = height - margin;
    let s = 0; let s2 = 0; let n = 0;
    for (let y = this.y0; y < this.y1; y += stride) {
      for (let x = this.x0; x < this.x1; x += stride) { const v = reference[y * width + x]!; s += v; s2 += v * v; n++; }
    }
    this.n = Math.max(1, n);
    this.refMean = s / this.n;
    this.refStd = Math.sqrt(Math.max(0, s2 / this.n - this.refMean * this.refMean));
  }

  /** NCC in [0, 1] (negative correlation clamps to 0) of the reference with `img` sampled at W(p). */
  score(img: Uint8Array, w: RigidWarp): number {
    const { width, height, stride, reference: r, refMean: rm } = this;
    const c = Math.cos(w.theta);
    const s = Math.sin(w.theta);
    const cx = (width - 1) / 2;
    const cy = (height - 1) / 2;
    const maxX = width - 1;
    const maxY = height - 1;
    let sw = 0; let sw2 = 0; let swr = 0;
    for (let y = this.y0; y < this.y1; y += stride) {
      // source of (x, y): sx = c·(x−cx) − s·(y−cy) + cx + tx, sy = s·(x−cx) + c·(y−cy) + cy + ty
      const bx = -s * (y - cy) + cx + w.tx;
      const by = c * (y - cy) + cy + w.ty;
      for (let x = this.x0; x < this.x1; x += stride) {
        let sx = c * (x - cx) + bx;
        let sy = s * (x - cx) + by;
        sx = sx < 0 ? 0 : sx > maxX ? maxX : sx;
        sy = sy < 0 ? 0 : sy > maxY ? maxY : sy;
        const ix = sx >= maxX ? maxX - 1 : sx | 0;
        const iy = sy >= maxY ? maxY - 1 : sy | 0;
        const fx = sx - ix;
        const i = iy * width + ix;
        const a = img[i]!;
        const top = a + (img[i + 1]! - a) * fx;
        const d = img[i + width]!;
        const v = top + (d + (img[i + width + 1]! - d) * fx - top) * (sy - iy);
        sw += v; sw2 += v * v; swr += v * (r[y * width + x]! - rm);
      }
    }
    const n = this.n;
    const std = Math.sqrt(Math.max(0, sw2 / n - (sw / n) ** 2));
    if (std < 1e-6 || this.refStd < 1e-6) return 0;
    return Math.max(0, Math.min(1, swr / (n * std * this.refStd)));
  }
}
