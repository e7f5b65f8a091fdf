/**
 * Part registration to a golden reference: rotation + translation, coarse to
 * fine, with a quality score. One module, used by teaching (aligning good
 * parts to the reference) and by the inference worker (every frame).
 *
 *   const reg = createRegistrar(reference, { maxShiftPx: 24, maxRotationDeg: 4, minQuality: 0.6 });
 *   const r = reg.register(img);        // { ok, dx, dy, angleDeg, quality, reason? }
 *   if (r.ok) reg.warp(img, r, out);    // out: img resampled into the reference's frame
 *
 * Convention: the part in `img` is the reference part rotated by `angleDeg`
 * about the image centre (the sign of OpenCV's getRotationMatrix2D: positive
 * is counter-clockwise on screen) and then shifted by (dx, dy) pixels.
 * `warp` undoes that (bilinear, borders replicated).
 *
 * Steps (at the model's input resolution, e.g. 320x256):
 *  1. coarse: a 2x2 box-average pyramid down to at most `coarseMaxWidth`
 *     (40x32 from 320x256); there, phase correlation (phase-correlation.ts,
 *     fft.js on a zero-padded power-of-two canvas) against the reference
 *     rotated by a few candidate angles in ±maxRotationDeg (0 and ±max up to
 *     6°; spectra computed once) gives the start: best angle and its shift.
 *  2. refinement: inverse-compositional Lucas-Kanade on rotation + translation
 *     (lk-refine.ts) at each pyramid level, coarse to fine, down to
 *     full resolution only when `fineIterations` > 0 (default 0: the half-resolution
 *     fit is already well under 0.1 px at full resolution): sub-pixel shift,
 *     hundredths of a degree.
 *  3. quality: normalised cross-correlation of the warped image with the
 *     reference (inner region), clamped to [0,1].
 * A blank image, quality below minQuality, or a shift/rotation beyond the
 * limits come back ok=false with a reason; register() never throws on content.
 *
 * Plain JS, no OpenCV: it runs in the station's inference workers, any number
 * of them per process (the OpenCV binding may be loaded by one thread only).
 * Every buffer is allocated by createRegistrar(); registerInto() and warp()
 * allocate nothing (register() allocates only its small result object).
 */
import type { GrayImage } from '../inspector/core/gray-image.js';
import { PhaseCorrelator, type Shift } from './phase-correlation.js';
import { RigidLK, warpF32, warpU8, type RigidWarp } from './lk-refine.js';

export interface RegistrationResult {
  ok: boolean;
  dx: number;
  dy: number;
  angleDeg: number;
  /** NCC of the warped image with the reference, 0..1 */
  quality: number;
  reason?: string;
}

export interface RegistrarOptions {
  /** largest |dx|, |dy| accepted, in pixels of the reference (default 10 % of the smaller side) */
  maxShiftPx?: number;
  /** largest |angle| accepted, degrees (default 4) */
  maxRotationDeg?: number;
  /** lowest quality accepted (default 0.6) */
  minQuality?: number;
  /** spacing of the coarse angle candidates, degrees (default 6: 0 and ±maxRotationDeg up to 6°; LK covers the rest) */
  angleStepDeg?: number;
  /** coarse level: halve until the width is at most this (default 64) */
  coarseMaxWidth?: number;
  /** Lucas-Kanade iterations at full resolution (default 0: the finest fit is at half resolution) */
  fineIterations?: number;
}

export interface Registrar {
  readonly width: number;
  readonly height: number;
  readonly options: Required<RegistrarOptions>;
  register(img: GrayImage): RegistrationResult;
  /** register() into a caller-owned result object: no allocation on success. */
  registerInto(img: GrayImage, out: RegistrationResult): RegistrationResult;
  /** Resample `img` into the reference frame; `out` has width*height bytes. */
  warp(img: GrayImage, result: RegistrationResult, out: Uint8Array): void;
}

/** Image standard deviation below which a frame counts as blank. */
const BLANK_STD = 2;
const DEG = 180 / Math.PI;

function stats(d: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < d.length; i++) { const v = d[i]!; s += v; s2 += v * v; }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(Math.max(0, s2 / d.length - mean * mean)) };
}

/** 2x2 box average of a w×h image (w, h even) into out ((w/2)×(h/2)). */
function down2(src: Float32Array | Uint8Array, w: number, h: number, out: Float32Array): void {
  const ow = w >> 1;
  const oh = h >> 1;
  for (let y = 0; y < oh; y++) {
    let i = 2 * y * w;
    let o = y * ow;
    for (let x = 0; x < ow; x++, i += 2, o++) out[o] = 0.25 * (src[i]! + src[i + 1]! + src[i + w]! + src[i + w + 1]!);
  }
}

export function createRegistrar(reference: GrayImage, opts: RegistrarOptions = {}): Registrar {
  const { width, height } = reference;
  if (reference.data.length !== width * height) throw new RangeError('reference: data length is not width*height');
  const options: Required<RegistrarOptions> = {
    maxShiftPx: opts.maxShiftPx ?? Math.round(0.1 * Math.min(width, height)),
    maxRotationDeg: opts.maxRotationDeg ?? 4,
    minQuality: opts.minQuality ?? 0.6,
    angleStepDeg: opts.angleStepDeg ?? 6,
    coarseMaxWidth: opts.coarseMaxWidth ?? 64,
    fineIterations: opts.fineIterations ?? 0,
  };
  const refStats = stats(reference.data);

  // pyramid sizes: level 0 = full, last = coarsest (halve while the width is above coarseMaxWidth and even)
  const dims: Array<{ w: number; h: number }> = [{ w: width, h: height }];
  for (;;) {
    const d = dims[dims.length - 1]!;
    if (d.w <= options.coarseMaxWidth || d.w % 2 !== 0 || d.h % 2 !== 0 || d.h < 16) break;
    dims.push({ w: d.w >> 1, h: d.h >> 1 });
  }
  const top = dims.length - 1;
  const refLevels: Float32Array[] = [Float32Array.from(reference.data)];
  // level 0 is the image's own bytes; a float copy only when LK runs at full resolution
  const fullLk = options.fineIterations > 0 || top === 0;
  const imgLevels: Float32Array[] = [new Float32Array(fullLk ? width * height : 0)];
  for (let l = 1; l <= top; l++) {
    refLevels.push(new Float32Array(dims[l]!.w * dims[l]!.h));
    down2(refLevels[l - 1]!, dims[l - 1]!.w, dims[l - 1]!.h, refLevels[l]!);
    imgLevels.push(new Float32Array(dims[l]!.w * dims[l]!.h));
  }
  const { w: cw, h: ch } = dims[top]!;
  const scaleTop = 2 ** top;
  // LK levels: coarsest .. 1, and full resolution only with fineIterations > 0
  const finestLk = fullLk ? 0 : 1;
  const lk = dims.map((d, level) => (level >= finestLk
    ? new RigidLK(refLevels[level]!, d.w, d.h, Math.ceil(Math.min(d.w, d.h) * 0.04) + (level === 0 ? 2 : 1))
    : null));
  const iterations = dims.map((_, level) => (level === 0 ? options.fineIterations : level === top ? 6 : level === finestLk ? 2 : 3));

  const pc = new PhaseCorrelator(cw, ch);
  const angles: number[] = [];
  const nSteps = Math.max(0, Math.ceil(options.maxRotationDeg / options.angleStepDeg));
  const step = nSteps > 0 ? options.maxRotationDeg / nSteps : 0;
  for (let k = -nSteps; k <= nSteps; k++) angles.push(k * step);
  // reference rotated by each candidate angle (out(p) = ref(R(a)(p − c) + c): the forward rotation by a)
  const rotated = new Float32Array(cw * ch);
  const refSpectra = angles.map((a) => {
    warpF32(refLevels[top]!, cw, ch, { theta: a / DEG, tx: 0, ty: 0 }, rotated);
    return pc.spectrum(rotated);
  });
  const imgSpectrum = pc.createSpectrum();
  const shift: Shift = { dx: 0, dy: 0, peak: 0 };

  // inner region for the quality score (borders hold replicated pixels after the warp)
  const qm = Math.ceil(Math.min(width, height) * 0.04);
  const refInner = ((): { mean: number; std: number; n: number } => {
    const d = reference.data;
    let s = 0; let s2 = 0; let n = 0;
    for (let y = qm; y < height - qm; y++) {
      for (let x = qm, i = y * width + qm; x < width - qm; x++, i++) { const v = d[i]!; s += v; s2 += v * v; n++; }
    }
    const mean = s / n;
    return { mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)), n };
  })();
  const quality = (w: Uint8Array): number => {
    // one pass: Σw, Σw², Σw·(r − mean r)
    let sw = 0; let sw2 = 0; let swr = 0;
    const r = reference.data;
    const rm = refInner.mean;
    for (let y = qm; y < height - qm; y++) {
      for (let i = y * width + qm, end = y * width + width - qm; i < end; i++) {
        const v = w[i]!;
        sw += v; sw2 += v * v; swr += v * (r[i]! - rm);
      }
    }
    const n = refInner.n;
    const std = Math.sqrt(Math.max(0, sw2 / n - (sw / n) ** 2));
    if (std < 1e-6 || refInner.std < 1e-6) return 0;
    return Math.max(0, Math.min(1, swr / (n * std * refInner.std)));
  };

  // the last warped image, so warp() right after register() costs a copy
  let lastResult: RegistrationResult | null = null;
  let lastValid = false;
  const lastWarped = new Uint8Array(width * height);
  const w: RigidWarp = { theta: 0, tx: 0, ty: 0 };
  const fresh: RigidWarp = { theta: 0, tx: 0, ty: 0 };
  const fail = (out: RegistrationResult, dx: number, dy: number, angleDeg: number, q: number, reason: string): RegistrationResult => {
    out.ok = false; out.dx = dx; out.dy = dy; out.angleDeg = angleDeg; out.quality = q; out.reason = reason;
    return out;
  };

  const registerInto = (img: GrayImage, out: RegistrationResult): RegistrationResult => {
    lastResult = null;
    lastValid = false;
    if (img.width !== width || img.height !== height || img.data.length !== width * height) {
      return fail(out, 0, 0, 0, 0, `image is ${img.width}x${img.height}, reference ${width}x${height}`);
    }
    const st = stats(img.data);
    if (st.std < BLANK_STD || refStats.std < BLANK_STD) {
      return fail(out, 0, 0, 0, 0, `blank image (contrast std ${st.std.toFixed(2)})`);
    }
    for (let l = 1; l <= top; l++) {
      down2(l === 1 ? img.data : imgLevels[l - 1]!, dims[l - 1]!.w, dims[l - 1]!.h, imgLevels[l]!);
    }
    if (fullLk) imgLevels[0]!.set(img.data);
    // 1. coarse start: best of the rotated references
    pc.spectrumInto(top === 0 ? img.data : imgLevels[top]!, imgSpectrum);
    let bestAngle = 0; let bestDx = 0; let bestDy = 0; let bestPeak = -Infinity;
    for (let k = 0; k < angles.length; k++) {
      pc.correlate(imgSpectrum, refSpectra[k]!, shift);
      if (shift.peak > bestPeak) { bestPeak = shift.peak; bestAngle = angles[k]!; bestDx = shift.dx; bestDy = shift.dy; }
    }
    w.theta = -bestAngle / DEG; w.tx = bestDx; w.ty = bestDy;
    // 2. Lucas-Kanade, coarse to fine
    for (let l = top; l >= 0; l--) {
      if (lk[l]) lk[l]!.refine(imgLevels[l]!, w, iterations[l]!);
      if (!Number.isFinite(w.tx + w.ty + w.theta)) break;
      if (l > 0) { w.tx *= 2; w.ty *= 2; }
    }
    const dx = w.tx;
    const dy = w.ty;
    const angleDeg = -w.theta * DEG;
    if (!Number.isFinite(dx + dy + angleDeg)) {
      return fail(out, bestDx * scaleTop, bestDy * scaleTop, bestAngle, 0, 'refinement diverged');
    }
    // 3. quality of the warped image (the warp from the reported figures, exactly as warp() does it)
    w.theta = -angleDeg / DEG;
    warpU8(img.data, width, height, w, lastWarped);
    const q = quality(lastWarped);
    if (q < options.minQuality) return fail(out, dx, dy, angleDeg, q, `quality ${q.toFixed(3)} below ${options.minQuality}`);
    if (Math.abs(dx) > options.maxShiftPx || Math.abs(dy) > options.maxShiftPx) {
      return fail(out, dx, dy, angleDeg, q, `shift (${dx.toFixed(1)}, ${dy.toFixed(1)}) px beyond ±${options.maxShiftPx}`);
    }
    if (Math.abs(angleDeg) > options.maxRotationDeg) {
      return fail(out, dx, dy, angleDeg, q, `rotation ${angleDeg.toFixed(2)}° beyond ±${options.maxRotationDeg}°`);
    }
    out.ok = true; out.dx = dx; out.dy = dy; out.angleDeg = angleDeg; out.quality = q;
    if (out.reason !== undefined) delete out.reason;
    lastResult = out;
    lastValid = true;
    return out;
  };

  const register = (img: GrayImage): RegistrationResult => registerInto(img, { ok: false, dx: 0, dy: 0, angleDeg: 0, quality: 0 });

  const warp = (img: GrayImage, result: RegistrationResult, out: Uint8Array): void => {
    if (out.length !== width * height) throw new RangeError(`warp: out has ${out.length} bytes, expected ${width * height}`);
    if (img.data.length !== width * height) throw new RangeError(`warp: image has ${img.data.length} bytes, expected ${width * height}`);
    // the cached warp is valid while `result` is the object register() filled and still holds its figures
    if (lastValid && result === lastResult && result.ok) { out.set(lastWarped); return; }
    fresh.theta = -result.angleDeg / DEG; fresh.tx = result.dx; fresh.ty = result.dy;
    warpU8(img.data, width, height, fresh, out);
  };

  return { width, height, options, register, registerInto, warp };
}
