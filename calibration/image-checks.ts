/**
 * Focus and exposure checks, in plain JS on a strided subsample so they run
 * cheaply in a worker (the capture worker samples about one frame a second).
 *
 * - Focus: Tenengrad (mean squared Sobel gradient) and the variance of the
 *   Laplacian, both taken with true neighbours at every `step`-th pixel, so they
 *   keep their sensitivity to fine detail. Defocus lowers both.
 * - Exposure: mean, 1st/99th percentile, the share of saturated (≥ 250) and
 *   dark (≤ 5) pixels, and a 32-bin histogram for the UI.
 *
 * Drift: a running station compares the median of the last few samples with
 * the values saved at calibration; a knocked camera (focus) or a dying lamp
 * (exposure) raises FOCUS_DRIFT / EXPOSURE_DRIFT before it causes false rejects.
 */
import type { Roi } from './roi.js';

export interface ImageChecks {
  /** Tenengrad: mean of gx² + gy² (3x3 Sobel) */
  tenengrad: number;
  /** variance of the 4-neighbour Laplacian */
  laplacianVar: number;
  mean: number;
  p01: number;
  p99: number;
  saturatedFraction: number;
  darkFraction: number;
  /** 32 bins of 8 grey levels, as fractions of the samples */
  histogram: number[];
  samples: number;
}

export interface CheckOptions {
  /** sample every `step`-th pixel of every `step`-th row (default 4) */
  step?: number;
  roi?: Roi | null;
  saturatedLevel?: number;
  darkLevel?: number;
}

/** Compute the checks over the ROI (or the whole image, minus a 1-px border). */
export function computeChecks(data: Uint8Array, width: number, height: number, o: CheckOptions = {}): ImageChecks {
  const step = Math.max(1, Math.floor(o.step ?? 4));
  const satLevel = o.saturatedLevel ?? 250;
  const darkLevel = o.darkLevel ?? 5;
  const r = o.roi ?? { x: 0, y: 0, width, height };
  const xa = Math.max(1, r.x); const xb = Math.min(width - 1, r.x + r.width);
  const ya = Math.max(1, r.y); const yb = Math.min(height - 1, r.y + r.height);
  const hist = new Uint32Array(256);
  let n = 0; let sum = 0; let ten = 0; let lapSum = 0; let lapSq = 0;
  // staggered: each sampled row starts one pixel further on, so a periodic pattern whose edges fall
  // between the sampled columns of one row is caught on the next
  for (let y = ya, k = 0; y < yb; y += step, k++) {
    const row = y * width;
    for (let x = xa + (k % step); x < xb; x += step) {
      const i = row + x;
      const c = data[i]!;
      const l = data[i - 1]!; const rr = data[i + 1]!; const u = data[i - width]!; const d = data[i + width]!;
      const ul = data[i - width - 1]!; const ur = data[i - width + 1]!; const dl = data[i + width - 1]!; const dr = data[i + width + 1]!;
      const gx = (ur + 2 * rr + dr) - (ul + 2 * l + dl);
      const gy = (dl + 2 * d + dr) - (ul + 2 * u + ur);
      ten += gx * gx + gy * gy;
      const lap = 4 * c - l - rr - u - d;
      lapSum += lap;
      lapSq += lap * lap;
      sum += c;
      hist[c]!++;
      n++;
    }
  }
  if (n === 0) {
    return { tenengrad: 0, laplacianVar: 0, mean: 0, p01: 0, p99: 0, saturatedFraction: 0, darkFraction: 0, histogram: new Array<number>(32).fill(0), samples: 0 };
  }
  const pct = (q: number): number => {
    const target = q * n;
    let acc = 0;
    for (let v = 0; v < 256; v++) { acc += hist[v]!; if (acc >= target) return v; }
    return 255;
  };
  let sat = 0; let dark = 0;
  for (let v = satLevel; v < 256; v++) sat += hist[v]!;
  for (let v = 0; v <= darkLevel; v++) dark += hist[v]!;
  const h32 = new Array<number>(32).fill(0);
  for (let v = 0; v < 256; v++) h32[v >> 3]! += hist[v]! / n;
  const lapMean = lapSum / n;
  return {
    tenengrad: ten / n, laplacianVar: lapSq / n - lapMean * lapMean, mean: sum / n, p01: pct(0.01), p99: pct(0.99),
    saturatedFraction: sat / n, darkFraction: dark / n, histogram: h32, samples: n,
  };
}

/** What the checks looked like when the station was calibrated, and how far they may move. */
export interface CheckReference {
  tenengrad: number;
  mean: number;
  saturatedFraction: number;
}
export interface DriftBands {
  /** focus alarm when Tenengrad falls below (1 − this) × reference (default 0.35) */
  sharpnessDropMax: number;
  /** exposure alarm when the mean moves more than this many grey levels (default 25) */
  meanDeltaMax: number;
  /** exposure alarm when more than this share of pixels is saturated (default 0.02) */
  saturatedMax: number;
}
export const DEFAULT_BANDS: DriftBands = { sharpnessDropMax: 0.35, meanDeltaMax: 25, saturatedMax: 0.02 };

export interface DriftVerdict {
  focus: { ok: boolean; detail: string };
  exposure: { ok: boolean; detail: string };
}

/** Compare one (aggregated) sample with the reference. Without a reference only saturation is judged. */
export function evaluateDrift(s: Pick<ImageChecks, 'tenengrad' | 'mean' | 'saturatedFraction'>, ref: CheckReference | null,
  bands: DriftBands = DEFAULT_BANDS): DriftVerdict {
  const focus = { ok: true, detail: '' };
  const exposure = { ok: true, detail: '' };
  if (ref && ref.tenengrad > 0 && s.tenengrad < (1 - bands.sharpnessDropMax) * ref.tenengrad) {
    focus.ok = false;
    focus.detail = `sharpness ${s.tenengrad.toFixed(0)} is ${((1 - s.tenengrad / ref.tenengrad) * 100).toFixed(0)} % below the calibrated ${ref.tenengrad.toFixed(0)}`;
  }
  if (s.saturatedFraction > bands.saturatedMax) {
    exposure.ok = false;
    exposure.detail = `${(s.saturatedFraction * 100).toFixed(1)} % of pixels saturated (max ${(bands.saturatedMax * 100).toFixed(1)} %)`;
  } else if (ref && Math.abs(s.mean - ref.mean) > bands.meanDeltaMax) {
    exposure.ok = false;
    exposure.detail = `mean grey ${s.mean.toFixed(0)} vs calibrated ${ref.mean.toFixed(0)} (band ±${bands.meanDeltaMax})`;
  }
  return { focus, exposure };
}

/**
 * Drift over a running station: the median of the last `window` samples is
 * judged (parts differ from frame to frame; one odd frame must not alarm).
 */
export class DriftMonitor {
  private readonly recent: ImageChecks[] = [];
  last: ImageChecks | null = null;

  constructor(private ref: CheckReference | null, private bands: DriftBands = DEFAULT_BANDS, private readonly window = 5) {}

  setReference(ref: CheckReference | null, bands?: DriftBands): void {
    this.ref = ref;
    if (bands) this.bands = bands;
  }

  /** Add a sample; returns the verdict once the window has filled, else null. */
  add(s: ImageChecks): DriftVerdict | null {
    this.last = s;
    this.recent.push(s);
    if (this.recent.length > this.window) this.recent.shift();
    if (this.recent.length < Math.min(3, this.window)) return null;
    const med = (f: (c: ImageChecks) => number): number => {
      const v = this.recent.map(f).sort((a, b) => a - b);
      return v[v.length >> 1]!;
    };
    return evaluateDrift({ tenengrad: med((c) => c.tenengrad), mean: med((c) => c.mean), saturatedFraction: med((c) => c.saturatedFraction) },
      this.ref, this.bands);
  }
}
