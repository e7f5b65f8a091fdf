/**
 * Inverse-compositional Lucas-Kanade refinement of a rigid warp (rotation
 * about the image centre + translation) against a fixed template: the
 * template's gradients, steepest-descent images and Hessian are computed once,
 * so each iteration is one bilinear warp of the inner region plus one pass
 * over its pixels. Plain JS into preallocated buffers (no OpenCV, no per-call
 * allocation): usable in any thread.
 *
 * Warp W(p) = R(θ)(p − c) + c + t, R(θ) = [[cos, −sin], [sin, cos]]:
 * a template pixel p is found at W(p) in the image.
 */

export interface RigidWarp {
  /** radians, R(θ) = [[cos, −sin], [sin, cos]] */
  theta: number;
  tx: number;
  ty: number;
}

/** The sub-range [rangeLo, rangeHi) of t in [0, n) where a ≤ p0 + k·t < b, shrunk by one (float and fixed-point safety). */
let rangeLo = 0;
let rangeHi = 0;
function sampleRange(p0: number, k: number, a: number, b: number, n: number): void {
  let lo = 0;
  let hi = n;
  if (k > 1e-12) {
    lo = Math.ceil((a - p0) / k) + 1;
    hi = Math.floor((b - p0) / k) - 1;
  } else if (k < -1e-12) {
    lo = Math.ceil((b - p0) / k) + 1;
    hi = Math.floor((a - p0) / k) - 1;
  } else if (!(p0 >= a && p0 < b - 1e-3)) {
    // (the margin keeps the 16.16 fixed-point rounding of p0 below b)
    hi = 0;
  }
  rangeLo = Math.max(rangeLo, lo);
  rangeHi = Math.min(rangeHi, hi);
}

/**
 * out(p) = src(W(p)) for p in [x0,x1)×[y0,y1) of a width×height image, bilinear,
 * borders replicated; pixels of `out` outside the region are left as they are.
 * Two copies with one array type each (warpF32: the LK levels, warpU8: frames,
 * rounded to nearest), so every element access stays monomorphic. Per row, the
 * run whose samples all lie inside skips the clamping.
 */
export function warpF32(src: Float32Array, width: number, height: number, w: RigidWarp,
  out: Float32Array, x0 = 0, x1 = width, y0 = 0, y1 = height): void {
  const c = Math.cos(w.theta);
  const s = Math.sin(w.theta);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const maxX = width - 1;
  const maxY = height - 1;
  const n = x1 - x0;
  for (let y = y0; y < y1; y++) {
    // source of (x, y): sx = c·(x−cx) − s·(y−cy) + cx + tx, sy = s·(x−cx) + c·(y−cy) + cy + ty
    const sx0 = c * (x0 - cx) - s * (y - cy) + cx + w.tx;
    const sy0 = s * (x0 - cx) + c * (y - cy) + cy + w.ty;
    rangeLo = 0; rangeHi = n;
    sampleRange(sx0, c, 0, maxX, n);
    sampleRange(sy0, s, 0, maxY, n);
    const lo = Math.min(rangeLo, n);
    const hi = Math.max(lo, rangeHi);
    const row = y * width + x0;
    for (let t = lo; t < hi; t++) {
      const sx = sx0 + c * t;
      const sy = sy0 + s * t;
      const ix = sx | 0;
      const iy = sy | 0;
      const fx = sx - ix;
      const i = iy * width + ix;
      const a = src[i]!;
      const top = a + (src[i + 1]! - a) * fx;
      const d = src[i + width]!;
      const bot = d + (src[i + width + 1]! - d) * fx;
      out[row + t] = top + (bot - top) * (sy - iy);
    }
    for (let t = 0; t < n; t++) {
      if (t === lo && hi > lo) { t = hi - 1; continue; }
      const sx = sx0 + c * t;
      const sy = sy0 + s * t;
      const px = sx < 0 ? 0 : sx > maxX ? maxX : sx;
      const py = sy < 0 ? 0 : sy > maxY ? maxY : sy;
      const ix = px >= maxX ? Math.max(0, maxX - 1) : px | 0;
      const iy = py >= maxY ? Math.max(0, maxY - 1) : py | 0;
      const fx = Math.min(1, px - ix);
      const fy = Math.min(1, py - iy);
      const i = iy * width + ix;
      const i1 = maxX > 0 ? i + 1 : i;
      const i2 = maxY > 0 ? i + width : i;
      const i3 = maxY > 0 ? i1 + width : i1;
      const a = src[i]!;
      const top = a + (src[i1]! - a) * fx;
      const d = src[i2]!;
      const bot = d + (src[i3]! - d) * fx;
      out[row + t] = top + (bot - top) * fy;
    }
  }
}

/** warpF32 for gray bytes, rounded to nearest (the inside run in fixed point: 1/256 px weights). */
export function warpU8(src: Uint8Array, width: number, height: number, w: RigidWarp, out: Uint8Array): void {
  const c = Math.cos(w.theta);
  const s = Math.sin(w.theta);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const maxX = width - 1;
  const maxY = height - 1;
  const n = width;
  for (let y = 0; y < height; y++) {
    const sx0 = c * -cx - s * (y - cy) + cx + w.tx;
    const sy0 = s * -cx + c * (y - cy) + cy + w.ty;
    rangeLo = 0; rangeHi = n;
    sampleRange(sx0, c, 0, maxX, n);
    sampleRange(sy0, s, 0, maxY, n);
    const lo = Math.min(rangeLo, n);
    const hi = Math.max(lo, rangeHi);
    const row = y * width;
    // inside run: 16.16 fixed point per pixel (truncated from the exact float position, so a
    // stepped increment cannot drift past the range), 8-bit weights, integer bilinear
    const c16 = c * 65536;
    const s16 = s * 65536;
    const x16 = sx0 * 65536;
    const y16 = sy0 * 65536;
    for (let t = lo; t < hi; t++) {
      const X = (x16 + c16 * t) | 0;
      const Y = (y16 + s16 * t) | 0;
      const fx = (X >> 8) & 255;
      const fy = (Y >> 8) & 255;
      const i = (Y >> 16) * width + (X >> 16);
      const top = src[i]! * (256 - fx) + src[i + 1]! * fx;
      const bot = src[i + width]! * (256 - fx) + src[i + width + 1]! * fx;
      out[row + t] = (top * (256 - fy) + bot * fy + 32768) >> 16;
    }
    for (let t = 0; t < n; t++) {
      if (t === lo && hi > lo) { t = hi - 1; continue; }
      const sx = sx0 + c * t;
      const sy = sy0 + s * t;
      const px = sx < 0 ? 0 : sx > maxX ? maxX : sx;
      const py = sy < 0 ? 0 : sy > maxY ? maxY : sy;
      const ix = px >= maxX ? Math.max(0, maxX - 1) : px | 0;
      const iy = py >= maxY ? Math.max(0, maxY - 1) : py | 0;
      const fx = Math.min(1, px - ix);
      const fy = Math.min(1, py - iy);
      const i = iy * width + ix;
      const i1 = maxX > 0 ? i + 1 : i;
      const i2 = maxY > 0 ? i + width : i;
      const i3 = maxY > 0 ? i1 + width : i1;
      const a = src[i]!;
      const top = a + (src[i1]! - a) * fx;
      const d = src[i2]!;
      const bot = d + (src[i3]! - d) * fx;
      out[row + t] = top + (bot - top) * fy + 0.5;
    }
  }
}

export class RigidLK {
  private readonly sd0: Float32Array;
  private readonly sd1: Float32Array;
  private readonly sd2: Float32Array;
  private readonly tpl: Float32Array;
  private readonly warped: Float32Array;
  private readonly hinv: number[];
  private readonly cx: number;
  private readonly cy: number;
  private readonly x0: number;
  private readonly x1: number;
  private readonly y0: number;
  private readonly y1: number;
  /** inner pixel count and Σ of each steepest-descent image over it */
  private readonly count: number;
  private readonly sum: [number, number, number] = [0, 0, 0];

  /** `template`: width*height gray pixels; `margin`: border pixels left out of the sums. */
  constructor(template: ArrayLike<number>, readonly width: number, readonly height: number, margin: number) {
    const n = width * height;
    this.cx = (width - 1) / 2;
    this.cy = (height - 1) / 2;
    this.tpl = Float32Array.from(template);
    this.warped = new Float32Array(n);
    this.sd0 = new Float32Array(n);
    this.sd1 = new Float32Array(n);
    this.sd2 = new Float32Array(n);
    this.x0 = Math.max(1, Math.min(margin, width >> 2));
    this.x1 = width - this.x0;
    this.y0 = Math.max(1, Math.min(margin, height >> 2));
    this.y1 = height - this.y0;
    const h = [0, 0, 0, 0, 0, 0, 0, 0, 0];
    const t = this.tpl;
    for (let y = this.y0; y < this.y1; y++) {
      for (let x = this.x0; x < this.x1; x++) {
        const i = y * width + x;
        const gx = 0.5 * (t[i + 1]! - t[i - 1]!);
        const gy = 0.5 * (t[i + width]! - t[i - width]!);
        const s0 = gx;
        const s1 = gy;
        const s2 = -gx * (y - this.cy) + gy * (x - this.cx);
        this.sd0[i] = s0; this.sd1[i] = s1; this.sd2[i] = s2;
        h[0]! += s0 * s0; h[1]! += s0 * s1; h[2]! += s0 * s2;
        h[4]! += s1 * s1; h[5]! += s1 * s2; h[8]! += s2 * s2;
      }
    }
    h[3] = h[1]!; h[6] = h[2]!; h[7] = h[5]!;
    this.hinv = invert3(h);
    this.count = Math.max(1, (this.x1 - this.x0) * (this.y1 - this.y0));
    for (let y = this.y0; y < this.y1; y++) {
      for (let i = y * width + this.x0; i < y * width + this.x1; i++) {
        this.sum[0] += this.sd0[i]!; this.sum[1] += this.sd1[i]!; this.sum[2] += this.sd2[i]!;
      }
    }
  }

  /** Refine `w` in place for up to `iterations`; returns the last update's size (px at the border). */
  refine(img: Float32Array, w: RigidWarp, iterations: number, stopPx = 0.02): number {
    const { width, height } = this;
    let step = Infinity;
    const warped = this.warped;
    for (let it = 0; it < iterations && step > stopPx; it++) {
      const { sd0, sd1, sd2, tpl, x0, x1, y0, y1 } = this;
      warpF32(img, width, height, w, warped, x0, x1, y0, y1);
      // one pass: b = Σ sd·(warped − tpl − off), off = mean(warped − tpl) (a brightness shift
      // must not bias the fit) = Σ sd·(warped − tpl) − off·Σ sd
      let b0 = 0; let b1 = 0; let b2 = 0; let sdiff = 0;
      for (let y = y0; y < y1; y++) {
        for (let i = y * width + x0, end = y * width + x1; i < end; i++) {
          const e = warped[i]! - tpl[i]!;
          sdiff += e;
          b0 += sd0[i]! * e; b1 += sd1[i]! * e; b2 += sd2[i]! * e;
        }
      }
      const off = sdiff / this.count;
      b0 -= off * this.sum[0]!; b1 -= off * this.sum[1]!; b2 -= off * this.sum[2]!;
      const h = this.hinv;
      const dtx = h[0]! * b0 + h[1]! * b1 + h[2]! * b2;
      const dty = h[3]! * b0 + h[4]! * b1 + h[5]! * b2;
      const dth = h[6]! * b0 + h[7]! * b1 + h[8]! * b2;
      if (!Number.isFinite(dtx + dty + dth)) return Infinity;
      // inverse composition: W ← W ∘ ΔW⁻¹ (both rotate about c): θ ← θ − δθ, t ← t − R(θ_new) δt
      const theta = w.theta - dth;
      const c = Math.cos(theta);
      const s = Math.sin(theta);
      w.tx -= c * dtx - s * dty;
      w.ty -= s * dtx + c * dty;
      w.theta = theta;
      step = Math.hypot(dtx, dty) + Math.abs(dth) * Math.hypot(this.cx, this.cy);
    }
    return step;
  }
}

function invert3(m: number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h; const B = -(d * i - f * g); const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) return [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const k = 1 / det;
  return [A * k, -(b * i - c * h) * k, (b * f - c * e) * k,
    B * k, (a * i - c * g) * k, -(a * f - c * d) * k,
    C * k, -(a * h - b * g) * k, (a * e - b * d) * k];
}
