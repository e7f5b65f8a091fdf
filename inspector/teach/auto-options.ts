/**
 * Teach options chosen from the good images alone (`teachPackage({ auto: true })`,
 * the default of `inspector teach` and of eval's per-pair teach). Nothing here
 * looks at a defective image or a label. The rules (README "Options chosen
 * from the good images"):
 *
 *  1. Profile the images (`profileImages`): Otsu threshold; dark and bright
 *     levels (medians of each side) and contrast C; the share of pixels within
 *     C/8 of either level; the noise σ (robust spread of pixel − 3x3 mean in
 *     flat areas).
 *     Binarised = C ≥ 100, ≥ 90 % of the pixels at the two levels and σ ≤ 1
 *     (a thresholded image has no sensor noise in its flat areas).
 *  2. Binarised images (printed boards, masks, scans thresholded upstream): a
 *     one-pixel edge shift is a full-contrast difference, so the tolerance is a
 *     neighbourhood envelope instead of a per-pixel band: the ±1 px min/max
 *     envelope, local alignment ±R per block, an opening that removes the
 *     slivers left at contours, full resolution (averaging turns a flipped pixel into grey),
 *     levels relative to the contrast.
 *  3. Grey images: the previous defaults, except that one image's floor is
 *     raised to 2σ when that is above the default floor (a noisy camera).
 *  4. Registration: kept when the registrar finds known shifts of the
 *     reference (a self-test on the reference); off when it locks onto another
 *     place (a repetitive pattern) or refuses a shifted copy that is not blank.
 *
 * Each chosen value comes with how it was chosen (`how`), written to the
 * manifest (`training.teach`); a given option always wins and is marked `given`.
 */
import type { GrayImage } from '../core/gray-image.js';
import { createRegistrar } from '../../calibration/registration.js';
import { DEFAULT_VARIATION, type VariationParams } from './variation-model.js';

export interface ImageProfile {
  kind: 'binarised' | 'grey';
  /** Otsu threshold, grey levels */
  threshold: number;
  dark: number;
  bright: number;
  contrast: number;
  /** share of pixels within contrast/8 of the dark or the bright level */
  twoLevelShare: number;
  /** noise σ in grey levels (flat areas) */
  noiseSigma: number;
  /** how many images were profiled */
  images: number;
}

/** The options teachPackage takes that auto may choose. */
export interface TunableTeachOptions {
  downscale: number;
  registration: boolean;
  variation: VariationParams;
  smoothPx: number;
  halfLevel: number;
  mapPool: number;
  localShiftPx: number;
  localShiftBlockPx: number;
  openSizePx: number;
  minDefectAreaPx: number;
}

export type GivenTeachOptions = Partial<Omit<TunableTeachOptions, 'variation' | 'registration'>> & {
  variation?: Partial<VariationParams>;
  registration?: boolean | object;
};

export interface ChosenTeachOptions {
  options: TunableTeachOptions;
  /** option (variation keys as `variation.k`) → how it was chosen */
  how: Record<string, string>;
  profile: ImageProfile | null;
}

const BINARY_MIN_CONTRAST = 100;
const BINARY_MIN_SHARE = 0.9;
/** a thresholded image has no sensor noise in its flat areas (σ in grey levels) */
const BINARY_MAX_NOISE = 1;
/** binarised: full resolution while the model input stays within this many pixels a side */
const BINARY_MAX_INPUT_SIDE = 1024;
/** binarised: a pixel must leave its golden 3x3 range by this share of the contrast to count */
const BINARY_FLOOR_SHARE = 0.16;
/** binarised: excess (share of the contrast) that scores 0.5 */
const BINARY_HALF_SHARE = 0.12;
/** binarised: local alignment radius assumed for separately binarised images (one image says nothing about the next one's offset) */
const BINARY_SHIFT_PX = 2;
/** binarised: opening size (slivers up to 2 px wide vanish) */
const BINARY_OPEN_PX = 3;
/** images profiled at most (the first N) */
const PROFILE_IMAGES = 4;

function otsu(hist: Float64Array, n: number): number {
  let sumAll = 0;
  for (let i = 0; i < 256; i++) sumAll += i * hist[i]!;
  let wB = 0;
  let sumB = 0;
  let best = -1;
  let t = 127;
  for (let i = 0; i < 256; i++) {
    wB += hist[i]!;
    if (wB === 0) continue;
    const wF = n - wB;
    if (wF === 0) break;
    sumB += i * hist[i]!;
    const mB = sumB / wB;
    const mF = (sumAll - sumB) / wF;
    const between = wB * wF * (mB - mF) ** 2;
    if (between > best) { best = between; t = i; }
  }
  return t;
}

function medianOfHist(hist: Float64Array, lo: number, hi: number): number {
  let n = 0;
  for (let i = lo; i <= hi; i++) n += hist[i]!;
  if (n === 0) return (lo + hi) / 2;
  let c = 0;
  for (let i = lo; i <= hi; i++) { c += hist[i]!; if (c >= n / 2) return i; }
  return hi;
}

function percentileOf(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

function profileOne(img: GrayImage): Omit<ImageProfile, 'images' | 'kind'> {
  const { width: W, height: H, data } = img;
  const n = W * H;
  const hist = new Float64Array(256);
  for (let i = 0; i < n; i++) hist[data[i]!]!++;
  const t = otsu(hist, n);
  const dark = medianOfHist(hist, 0, t);
  const bright = medianOfHist(hist, t + 1, 255);
  const contrast = Math.max(0, bright - dark);
  const band = contrast / 8;
  let near = 0;
  for (let v = 0; v < 256; v++) if (Math.abs(v - dark) <= band || Math.abs(v - bright) <= band) near += hist[v]!;
  // noise: pixel − mean of its 3x3 neighbourhood, where the 3x3 range is small (no edge), every 2nd pixel
  const resid: number[] = [];
  const flat = Math.max(8, contrast / 4);
  for (let y = 1; y < H - 1; y += 2) {
    for (let x = 1; x < W - 1; x += 2) {
      let s = 0; let mn = 255; let mx = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) { const v = data[(y + dy) * W + x + dx]!; s += v; if (v < mn) mn = v; if (v > mx) mx = v; }
      }
      if (mx - mn <= flat) resid.push(Math.abs(data[y * W + x]! - s / 9));
    }
  }
  // |r| median × 1.4826 = σ of r; r = x − mean3x3 has variance σ²·8/9 for white noise
  const noiseSigma = resid.length > 100 ? (percentileOf(resid, 0.5) * 1.4826) / Math.sqrt(8 / 9) : 0;
  return {
    threshold: t, dark, bright, contrast, twoLevelShare: near / n, noiseSigma,
  };
}

/** The images' profile: per-image figures, the median over the first few images. */
export function profileImages(good: readonly GrayImage[]): ImageProfile {
  const ps = good.slice(0, PROFILE_IMAGES).map(profileOne);
  const med = (f: (p: Omit<ImageProfile, 'images' | 'kind'>) => number): number => percentileOf(ps.map(f), 0.5);
  const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;
  const p: Omit<ImageProfile, 'kind'> = {
    threshold: med((q) => q.threshold), dark: med((q) => q.dark), bright: med((q) => q.bright), contrast: med((q) => q.contrast),
    twoLevelShare: round(med((q) => q.twoLevelShare)), noiseSigma: round(med((q) => q.noiseSigma), 2),
    images: ps.length,
  };
  const binarised = p.contrast >= BINARY_MIN_CONTRAST && p.twoLevelShare >= BINARY_MIN_SHARE && p.noiseSigma <= BINARY_MAX_NOISE;
  return { kind: binarised ? 'binarised' : 'grey', ...p };
}

/** Shift an image by integer (dx, dy), edge pixels repeated. */
function shifted(img: GrayImage, dx: number, dy: number): GrayImage {
  const { width: W, height: H } = img;
  const out = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(H - 1, Math.max(0, y - dy));
    for (let x = 0; x < W; x++) out[y * W + x] = img.data[sy * W + Math.min(W - 1, Math.max(0, x - dx))]!;
  }
  return { width: W, height: H, data: out };
}

/**
 * Registration self-test on the reference (model-input size): shift it by
 * known offsets (a third and a half of the allowed shift, four directions)
 * and register each. Passes when every shift is found within 1 px.
 */
export function registrationSelfTest(reference: GrayImage, maxShiftPx: number):
  { ok: boolean; detail: string; blank: boolean } {
  const reg = createRegistrar(reference, { maxShiftPx, maxRotationDeg: 6, minQuality: 0.7 });
  const a = Math.max(1, Math.round(maxShiftPx / 3));
  const b = Math.max(1, Math.round(maxShiftPx / 2));
  for (const [dx, dy] of [[a, -b], [-b, a], [b, b], [-a, -a]] as Array<[number, number]>) {
    const r = reg.register(shifted(reference, dx, dy));
    if (!r.ok) {
      const blank = /blank/.test(r.reason ?? '');
      return { ok: false, blank, detail: `a copy of the reference shifted by (${dx}, ${dy}) px is refused (${r.reason ?? 'not registrable'})` };
    }
    if (Math.abs(r.dx - dx) > 1 || Math.abs(r.dy - dy) > 1) {
      return { ok: false, blank: false, detail: `a copy of the reference shifted by (${dx}, ${dy}) px registers at (${r.dx.toFixed(1)}, ${r.dy.toFixed(1)}): the pattern repeats, the registrar can lock onto the wrong repeat` };
    }
  }
  return { ok: true, blank: false, detail: `the registrar finds shifts of ±${a} and ±${b} px of the reference to within 1 px` };
}

/** Largest of `candidates` dividing both sides (and leaving ≥ `min` after division), else null. */
function dividing(candidates: number[], w: number, h: number, min = 1): number | null {
  for (const c of candidates) if (w % c === 0 && h % c === 0 && w / c >= min && h / c >= min) return c;
  return null;
}

/**
 * Choose the teach options from the good images. `given` options are kept as
 * they are (`how: given`).
 */
export function chooseTeachOptions(good: readonly GrayImage[], given: GivenTeachOptions): ChosenTeachOptions {
  const how: Record<string, string> = {};
  const { width: W, height: H } = good[0]!;
  const single = good.length === 1;
  const profile = profileImages(good);
  const bin = profile.kind === 'binarised';
  const C = profile.contrast;
  const describe = `${profile.kind} (contrast ${profile.contrast}, ${(100 * profile.twoLevelShare).toFixed(1)} % of pixels`
    + ` at the two levels ${profile.dark}/${profile.bright})`;

  function pick<T>(key: string, value: T | undefined, chosen: () => [T, string]): T {
    if (value !== undefined) { how[key] = 'given'; return value; }
    const [v, why] = chosen();
    how[key] = `auto: ${why}`;
    return v;
  }
  const downscale = pick('downscale', given.downscale, () => {
    if (bin) {
      const d = [1, 2, 4, 8].find((c) => W % c === 0 && H % c === 0 && Math.max(W, H) / c <= BINARY_MAX_INPUT_SIDE) ?? 1;
      return [d, `${describe}: a defect is a few flipped pixels, which averaging would turn into grey that the envelope absorbs;`
        + ` the smallest factor of 1, 2, 4, 8 that keeps the input within ${BINARY_MAX_INPUT_SIDE} px a side`];
    }
    const d = dividing([4, 2, 1], W, H, 8) ?? 1;
    return [d, d === 4 ? 'the default 4 (grey images)' : `4 does not divide ${W}x${H}: the largest of 2, 1 that does`];
  });
  const iw = W / downscale;
  const ih = H / downscale;

  const localShiftPx = pick('localShiftPx', given.localShiftPx, () => {
    if (!bin) return [0, 'off (grey images: a tolerance band absorbs sub-pixel edge shifts)'];
    return [BINARY_SHIFT_PX, `binarised: contours of separately thresholded images land a pixel or two off; ±${BINARY_SHIFT_PX} px per block`];
  });
  const localShiftBlockPx = pick('localShiftBlockPx', given.localShiftBlockPx, () => {
    const b = dividing([32, 16, 8], iw, ih) ?? 32;
    return [b, localShiftPx > 0 ? `the largest of 32, 16, 8 dividing the ${iw}x${ih} input` : 'unused (no local alignment)'];
  });
  // no block size fits: no local alignment (given values are checked by teachPackage as they are)
  const shiftUsable = given.localShiftPx !== undefined || given.localShiftBlockPx !== undefined
    || (iw % localShiftBlockPx === 0 && ih % localShiftBlockPx === 0);
  const R = shiftUsable ? localShiftPx : 0;
  if (!shiftUsable) how.localShiftPx = `auto: off: no block size of 32, 16, 8 divides the ${iw}x${ih} input`;

  const openSizePx = pick('openSizePx', given.openSizePx, () => {
    if (!bin) return [0, 'off (grey images)'];
    return [BINARY_OPEN_PX, `binarised: slivers up to ${BINARY_OPEN_PX - 1} px wide left at contours vanish (opening ${BINARY_OPEN_PX}x${BINARY_OPEN_PX})`];
  });
  const smoothPx = pick('smoothPx', given.smoothPx, () => {
    if (bin) return [1, 'binarised: no smoothing (the opening removes isolated pixels; a thin defect is not diluted)'];
    return [single ? 3 : 1, single ? '3 from one image (one noisy pixel is diluted)' : '1 from many images'];
  });
  const halfLevel = pick('halfLevel', given.halfLevel, () => {
    if (bin) {
      const h = Math.round(BINARY_HALF_SHARE * C);
      return [h, `binarised: ${BINARY_HALF_SHARE * 100} % of the contrast ${C}`];
    }
    return [5, 'the default 5 grey levels'];
  });
  const mapPool = pick('mapPool', given.mapPool, () => {
    const p = dividing([4, 2, 1], iw, ih) ?? 1;
    return [p, p === 4 ? 'the default 4' : `4 does not divide the ${iw}x${ih} input`];
  });
  const minDefectAreaPx = pick('minDefectAreaPx', given.minDefectAreaPx, () => [0, 'the default 0']);

  // variation parameters one by one
  const gv = given.variation ?? {};
  const autoVar: Partial<Record<keyof VariationParams, [number, string]>> = {};
  {
    if (bin) {
      const floor = Math.max(Math.round(BINARY_FLOOR_SHARE * C), Math.ceil(4 * profile.noiseSigma));
      if (single) {
        autoVar.singleRangePx = [1, 'binarised: a pixel may take any value of its golden 3x3 neighbourhood (an edge a pixel off is no defect)'];
        autoVar.singleEdgeGain = [0, 'binarised: the envelope replaces the edge tolerance'];
        autoVar.singleFloor = [floor, `binarised: max(${BINARY_FLOOR_SHARE * 100} % of the contrast ${C}, 4σ noise ${profile.noiseSigma})`];
      } else {
        autoVar.floor = [floor, `binarised: max(${BINARY_FLOOR_SHARE * 100} % of the contrast ${C}, 4σ noise ${profile.noiseSigma})`];
      }
      if (R > 0) autoVar.borderPx = [R + 1, `local alignment ±${R}: shifted frames repeat their border rows (R + 1)`];
    } else if (single && 2 * profile.noiseSigma > DEFAULT_VARIATION.singleFloor) {
      autoVar.singleFloor = [Math.ceil(2 * profile.noiseSigma), `2σ of the image noise (σ ${profile.noiseSigma}), above the default ${DEFAULT_VARIATION.singleFloor}`];
    }
  }
  const variation = { ...DEFAULT_VARIATION };
  for (const key of Object.keys(DEFAULT_VARIATION) as Array<keyof VariationParams>) {
    if (gv[key] !== undefined) { variation[key] = gv[key]!; how[`variation.${key}`] = 'given'; continue; }
    const a = autoVar[key];
    if (a) { variation[key] = a[0]; how[`variation.${key}`] = `auto: ${a[1]}`; continue; }
    how[`variation.${key}`] = 'default (no rule changes it for these images)';
  }

  // registration last: the self-test runs on the reference at the chosen input size
  let registration: boolean;
  if (given.registration !== undefined) {
    registration = given.registration !== false;
    how.registration = 'given';
  } else {
    const ref = downscaleForTest(good[0]!, downscale);
    const t = registrationSelfTest(ref, Math.round(0.1 * Math.min(iw, ih)));
    // a blank reference: registration stays on, and teaching refuses it (INSPECTOR_TEACH_NO_IMAGES) as without auto
    registration = t.ok || t.blank;
    how.registration = `auto: ${t.ok ? 'on' : t.blank ? 'on (the reference is blank: teaching will refuse it)' : 'off'}: ${t.detail}`
      + `${!t.ok && !t.blank && R > 0 ? `; the local alignment (±${R} px) absorbs small offsets` : ''}`;
  }
  return {
    options: {
      downscale, registration, variation, smoothPx, halfLevel, mapPool, localShiftPx: R, localShiftBlockPx, openSizePx, minDefectAreaPx,
    },
    how,
    profile,
  };
}

/** Box-average by an integer factor (the same bytes as teach's downscale). */
function downscaleForTest(img: GrayImage, f: number): GrayImage {
  if (f === 1) return img;
  const w = img.width / f;
  const h = img.height / f;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let j = 0; j < f; j++) for (let i = 0; i < f; i++) s += img.data[(y * f + j) * img.width + x * f + i]!;
      out[y * w + x] = Math.round(s / (f * f));
    }
  }
  return { width: w, height: h, data: out };
}
