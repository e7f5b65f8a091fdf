/**
 * The decision rule: the package's threshold and minimum defect area decide. Anything that is not a
 * clean pass is a reject with its own code (fail-safe).
 */
import { ResultCode, type ResultCodeValue, type Verdict } from '../core/types.js';

export interface Decision { verdict: Verdict; code: ResultCodeValue }

/**
 * `areaPx`: frame pixels of the map at or above the threshold (NaN when the model has no
 * single-channel map); a defect smaller than `minAreaPx` passes.
 */
export function decide(score: number, threshold: number, areaPx = Number.NaN, minAreaPx = 0): Decision {
  if (!Number.isFinite(score)) return { verdict: 'reject', code: ResultCode.INFERENCE_ERROR };
  const tooSmall = minAreaPx > 0 && Number.isFinite(areaPx) && areaPx < minAreaPx;
  return score >= threshold && !tooSmall
    ? { verdict: 'reject', code: ResultCode.DEFECT }
    : { verdict: 'pass', code: ResultCode.PASS };
}

/** Which images to keep: every reject, doubtful passes near the threshold, and a sample of passes. */
export function shouldSaveImage(
  policy: 'all' | 'rejects' | 'none', verdict: Verdict, score: number, threshold: number,
  seq: number, passSampleEvery: number, doubtMargin: number,
): boolean {
  if (policy === 'none') return false;
  if (policy === 'all' || verdict === 'reject') return true;
  return score >= threshold - doubtMargin || seq % passSampleEvery === 0;
}
