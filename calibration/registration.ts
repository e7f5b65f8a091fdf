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
 *     gives the start shift. The unrotated reference is tried first: from
 *     there Lucas-Kanade pulls in rotations of several degrees, so a fit of
 *     quality >= `acceptQuality` ends the search. Otherwise the reference
 *     rotated by the other candidate angles in ±maxRotationDeg (±max up to 6°;
 *     spectra computed once) is correlated too, the best peak is fitted as
 *     well, and the better of the two fits is kept.
 *  2. refinement: inverse-compositional Lucas-Kanade on rotation + translation
 *     (lk-refine.ts) at each pyramid level, coarse to fine (6, 2 and 1
 *     iterations down to half resolution), and at full resolution only when
 *     `fineIterations` > 0 (default 0: the half-resolution fit is already
 *     within 0.05 px at full resolution on the fixtures): sub-pixel shift,
 *     hundredths of a degree.
 *  3. quality: normalised cross-correlation of the image, sampled through the
 *     fitted warp, with the reference (inner region, every 3rd pixel:
 *     registration-quality.ts), clamped to [0,1]. No warped copy is made:
 *     warp() resamples the image once, when the caller needs it.
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
import { SampledNcc } from './registration-quality.js';

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
  /**
   * A fit from the unrotated start with at least this quality is kept without trying the other
   * candidate angles (default max(minQuality, 0.9)); 1 always tries them.
   */
  acceptQuality?: number;
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
    acceptQuality: opts.acceptQuality ?? Math.max(opts.minQuality ?? 0.6, 0.9),
  };

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
  // blank check on the first pyramid level (a quarter of the pixels; the full image when there is none)
  const refStats = stats(top > 0 ? refLevels[1]! : reference.data);
  const { w: cw, h: ch } = dims[top]!;
  const scaleTop = 2 ** top;
  // LK levels: coarsest .. 1, and full resolution only with fineIterations > 0
  const finestLk = fullLk ? 0 : 1;
  const lk = dims.map((d, level) => (level >= finestLk
    ? new RigidLK(refLevels[level]!, d.w, d.h, Math.ceil(Math.min(d.w, d.h) * 0.04) + (level === 0 ? 2 : 1))
    : null));
  const iterations = dims.map((_, level) => (level === 0 ? options.fineIterations : level === top ? 6 : level === finestLk ? 1 : 2));

  const pc = new PhaseCorrelator(cw, ch);
  const angles: number[] = [];
  const nSteps = Math.max(0, Math.ceil(options.maxRotationDeg / options.angleStepDeg));
  const step = nSteps > 0 ? options.maxRotationDeg / nSteps : 0;
  for (let k = -nSteps; k <= nSteps; k++) angles.push(k * step);
  const zeroAngle = nSteps;
  // reference rotated by each candidate angle (out(p) = ref(R(a)(p − c) + c): the forward rotation by a)
  const rotated = new Float32Array(cw * ch);
  const refSpectra = angles.map((a) => {
    warpF32(refLevels[top]!, cw, ch, { theta: a / DEG, tx: 0, ty: 0 }, rotated);
    return pc.spectrum(rotated);
  });
  const imgSpectrum = pc.createSpectrum();
  const shift: Shift = { dx: 0, dy: 0, peak: 0 };

  // quality: NCC with the reference through the fitted warp, inner region, every 3rd pixel (no warped copy)
  const ncc = new SampledNcc(reference.data, width, height, Math.ceil(Math.min(width, height) * 0.04), 3);
  const w: RigidWarp = { theta: 0, tx: 0, ty: 0 };
  const fresh: RigidWarp = { theta: 0, tx: 0, ty: 0 };
  const fail = (out: RegistrationResult, dx: number, dy: number, angleDeg: number, q: number, reason: string): RegistrationResult => {
    out.ok = false; out.dx = dx; out.dy = dy; out.angleDeg = angleDeg; out.quality = q; out.reason = reason;
    return out;
  };

  /**
   * LK from a coarse start (candidate angle, shift at the coarse level) into `w` (full resolution);
   * returns the quality through exactly the warp warp() applies for the reported figures, or -1 when
   * the refinement diverged.
   */
  const fit = (data: Uint8Array, angle: number, cdx: number, cdy: number): number => {
    w.theta = -angle / DEG; w.tx = cdx; w.ty = cdy;
    for (let l = top; l >= 0; l--) {
      if (lk[l]) lk[l]!.refine(imgLevels[l]!, w, iterations[l]!);
      if (!Number.isFinite(w.tx + w.ty + w.theta)) return -1;
      if (l > 0) { w.tx *= 2; w.ty *= 2; }
    }
    w.theta = -(-w.theta * DEG) / DEG;
    return ncc.score(data, w);
  };

  /** the search's state for the frame being registered (one object per registrar: nothing allocated per frame) */
  const cur = { data: reference.data, q: -1, angle: 0, dx: 0, dy: 0 };
  /** fit from another start; keep it (and its start) only if its quality beats the current fit's */
  const tryStart = (angle: number, cdx: number, cdy: number): void => {
    const q0 = cur.q; const th0 = w.theta; const tx0 = w.tx; const ty0 = w.ty;
    const q = fit(cur.data, angle, cdx, cdy);
    if (q < q0) { w.theta = th0; w.tx = tx0; w.ty = ty0; } else { cur.q = q; cur.angle = angle; cur.dx = cdx; cur.dy = cdy; }
  };

  const registerInto = (img: GrayImage, out: RegistrationResult): RegistrationResult => {
    if (img.width !== width || img.height !== height || img.data.length !== width * height) {
      return fail(out, 0, 0, 0, 0, `image is ${img.width}x${img.height}, reference ${width}x${height}`);
    }
    for (let l = 1; l <= top; l++) {
      down2(l === 1 ? img.data : imgLevels[l - 1]!, dims[l - 1]!.w, dims[l - 1]!.h, imgLevels[l]!);
    }
    const st = stats(top > 0 ? imgLevels[1]! : img.data);
    if (st.std < BLANK_STD || refStats.std < BLANK_STD) {
      return fail(out, 0, 0, 0, 0, `blank image (contrast std ${st.std.toFixed(2)})`);
    }
    if (fullLk) imgLevels[0]!.set(img.data);
    // 1. coarse start, 2. Lucas-Kanade, 3. quality, for up to three starts, in order, until a fit
    // reaches acceptQuality; the best fit is kept:
    //   a. the phase-correlation peak against the unrotated reference (LK pulls in rotations of
    //      several degrees from there: the usual case ends here);
    //   b. the nominal position, no shift (periodic content, e.g. a board of repeated cells, can
    //      put the highest peak on another repeat; parts arrive near their nominal place);
    //   c. the highest peak over the other candidate angles.
    pc.spectrumInto(top === 0 ? img.data : imgLevels[top]!, imgSpectrum);
    pc.correlate(imgSpectrum, refSpectra[zeroAngle]!, shift);
    cur.data = img.data; cur.angle = 0; cur.dx = shift.dx; cur.dy = shift.dy;
    cur.q = fit(img.data, 0, cur.dx, cur.dy);
    if (cur.q < options.acceptQuality && (cur.dx !== 0 || cur.dy !== 0)) tryStart(0, 0, 0);
    if (cur.q < options.acceptQuality && angles.length > 1) {
      let bestPeak = -Infinity; let bestAngle = 0; let bestDx = 0; let bestDy = 0;
      for (let k = 0; k < angles.length; k++) {
        if (k === zeroAngle) continue;
        pc.correlate(imgSpectrum, refSpectra[k]!, shift);
        if (shift.peak > bestPeak) { bestPeak = shift.peak; bestAngle = angles[k]!; bestDx = shift.dx; bestDy = shift.dy; }
      }
      tryStart(bestAngle, bestDx, bestDy);
    }
    const q = cur.q;
    if (q < 0) return fail(out, cur.dx * scaleTop, cur.dy * scaleTop, cur.angle, 0, 'refinement diverged');
    const dx = w.tx;
    const dy = w.ty;
    const angleDeg = -w.theta * DEG;
    if (q < options.minQuality) return fail(out, dx, dy, angleDeg, q, `quality ${q.toFixed(3)} below ${options.minQuality}`);
    if (Math.abs(dx) > options.maxShiftPx || Math.abs(dy) > options.maxShiftPx) {
      return fail(out, dx, dy, angleDeg, q, `shift (${dx.toFixed(1)}, ${dy.toFixed(1)}) px beyond ±${options.maxShiftPx}`);
    }
    if (Math.abs(angleDeg) > options.maxRotationDeg) {
      return fail(out, dx, dy, angleDeg, q, `rotation ${angleDeg.toFixed(2)}° beyond ±${options.maxRotationDeg}°`);
    }
    out.ok = true; out.dx = dx; out.dy = dy; out.angleDeg = angleDeg; out.quality = q;
    if (out.reason !== undefined) delete out.reason;
    return out;
  };

  const register = (img: GrayImage): RegistrationResult => registerInto(img, { ok: false, dx: 0, dy: 0, angleDeg: 0, quality: 0 });

  const warp = (img: GrayImage, result: RegistrationResult, out: Uint8Array): void => {
    if (out.length !== width * height) throw new RangeError(`warp: out has ${out.length} bytes, expected ${width * height}`);
    if (img.data.length !== width * height) throw new RangeError(`warp: image has ${img.data.length} bytes, expected ${width * height}`);
    fresh.theta = -result.angleDeg / DEG; fresh.tx = result.dx; fresh.ty = result.dy;
    warpU8(img.data, width, height, fresh, out);
  };

  return { width, height, options, register, registerInto, warp };
}
