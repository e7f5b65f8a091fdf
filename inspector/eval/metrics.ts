/**
 * Evaluation metrics, each a pure function with a known answer on small cases
 * (test/eval-metrics.test.ts):
 *
 * - image AUROC as the Mann-Whitney rank statistic (ties count one half):
 *   the probability that a random defective image outscores a random good one;
 * - confusion matrix, precision, recall, F1 at the package threshold;
 * - per-class recall;
 * - operating points: for a wanted recall, the highest score threshold that
 *   reaches it and the false-reject rate it costs (for choosing a line
 *   threshold on held-out parts);
 * - region matching: ground-truth defects (boxes, or 8-connected components
 *   of a mask >= 128) against predicted defect regions (boxes in image
 *   pixels). A GT defect is found when a predicted box overlaps it (shares at
 *   least one pixel with the box / the component); a predicted region that
 *   overlaps no GT defect is a false region.
 */
import { labelComponents, type DefectRegion } from '../inference/defect-regions.js';
import type { GtBox } from './dataset-types.js';

/** Rank-based AUROC; null when either class is missing. */
export function auroc(scores: readonly number[], positive: readonly boolean[]): number | null {
  const n = scores.length;
  if (positive.length !== n) throw new RangeError('scores and labels differ in length');
  const nPos = positive.filter(Boolean).length;
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  const order = [...scores.keys()].sort((a, b) => scores[a]! - scores[b]!);
  // midranks (1-based) over ties
  let rankSumPos = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const mid = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) if (positive[order[k]!]) rankSumPos += mid;
    i = j + 1;
  }
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface Confusion { tp: number; fp: number; tn: number; fn: number }

export function confusion(predicted: readonly boolean[], positive: readonly boolean[]): Confusion {
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  predicted.forEach((p, i) => {
    if (positive[i]) { if (p) c.tp++; else c.fn++; } else if (p) c.fp++; else c.tn++;
  });
  return c;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

export function precisionRecallF1(c: Confusion): { precision: number | null; recall: number | null; f1: number | null; accuracy: number | null } {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  const f1 = ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
  return { precision, recall, f1, accuracy: ratio(c.tp + c.tn, c.tp + c.tn + c.fp + c.fn) };
}

export interface ClassRecall { recall: number; detected: number; total: number }

/** Image-level recall per defect class (good images are left out). */
export function perClassRecall(classes: readonly (string | null)[], predicted: readonly boolean[]): Record<string, ClassRecall> {
  const out: Record<string, ClassRecall> = {};
  classes.forEach((cls, i) => {
    if (cls === null) return;
    const r = (out[cls] ??= { recall: 0, detected: 0, total: 0 });
    r.total++;
    if (predicted[i]) r.detected++;
  });
  for (const r of Object.values(out)) r.recall = r.detected / r.total;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export interface OperatingPoint {
  /** the recall asked for */
  target_recall: number;
  /** the highest threshold (score >= threshold is a reject) whose recall reaches the target */
  threshold: number;
  recall: number;
  false_reject_rate: number | null;
}

/**
 * For each wanted recall r: the threshold t = the ceil(r * nDefective)-th highest
 * defective score (so at least that share of defects scores >= t), the recall at
 * t, and the share of good images with score >= t. Empty without defective images.
 */
export function operatingPoints(scores: readonly number[], positive: readonly boolean[],
  targets: readonly number[] = [0.99, 0.95, 0.9]): OperatingPoint[] {
  if (positive.length !== scores.length) throw new RangeError('scores and labels differ in length');
  const defect = scores.filter((_, i) => positive[i]).sort((a, b) => b - a);
  const good = scores.filter((_, i) => !positive[i]);
  if (defect.length === 0) return [];
  return targets.map((target) => {
    const threshold = defect[Math.max(0, Math.ceil(target * defect.length - 1e-9) - 1)]!; // 0.3 * 10 is 3.0000000000000004
    return {
      target_recall: target,
      threshold,
      recall: defect.filter((v) => v >= threshold).length / defect.length,
      false_reject_rate: good.length ? good.filter((v) => v >= threshold).length / good.length : null,
    };
  });
}

/** Ground-truth defects of one image: boxes, or labelled components of a mask. */
export type GroundTruth =
  | { kind: 'boxes'; boxes: GtBox[] }
  | { kind: 'mask'; width: number; height: number; labels: Int32Array; count: number; defectClass: string | null }
  | { kind: 'none' };

/** Components of a mask (>= 128 is defect) as ground-truth defects. */
export function groundTruthFromMask(mask: Uint8Array, width: number, height: number, defectClass: string | null): GroundTruth {
  const { labels, count } = labelComponents(mask, width, height, 128);
  return { kind: 'mask', width, height, labels, count, defectClass };
}

export interface RegionMatch {
  /** GT defects in the image */
  gtTotal: number;
  /** GT defects that at least one predicted region overlaps */
  gtHit: number;
  /** per defect class: [hit, total] */
  perClass: Record<string, { hit: number; total: number }>;
  predicted: number;
  /** predicted regions overlapping no GT defect */
  falseRegions: number;
}

function boxesOverlap(r: DefectRegion, b: GtBox): boolean {
  return r.x < b.x2 && b.x1 < r.x + r.w && r.y < b.y2 && b.y1 < r.y + r.h;
}

export function matchRegions(regions: readonly DefectRegion[], gt: GroundTruth): RegionMatch {
  const perClass: RegionMatch['perClass'] = {};
  const count = (cls: string | null, hit: boolean): void => {
    const e = (perClass[cls ?? 'defect'] ??= { hit: 0, total: 0 });
    e.total++;
    if (hit) e.hit++;
  };
  let gtTotal = 0;
  let gtHit = 0;
  let falseRegions = 0;
  if (gt.kind === 'boxes') {
    gtTotal = gt.boxes.length;
    for (const b of gt.boxes) {
      const hit = regions.some((r) => boxesOverlap(r, b));
      if (hit) gtHit++;
      count(b.defectClass, hit);
    }
    for (const r of regions) if (!gt.boxes.some((b) => boxesOverlap(r, b))) falseRegions++;
  } else if (gt.kind === 'mask') {
    gtTotal = gt.count;
    const hit = new Uint8Array(gt.count + 1);
    for (const r of regions) {
      let any = false;
      const x1 = Math.min(gt.width, r.x + r.w);
      const y1 = Math.min(gt.height, r.y + r.h);
      for (let y = Math.max(0, r.y); y < y1; y++) {
        for (let x = Math.max(0, r.x), i = y * gt.width + x; x < x1; x++, i++) {
          const l = gt.labels[i]!;
          if (l !== 0) { hit[l] = 1; any = true; }
        }
      }
      if (!any) falseRegions++;
    }
    for (let l = 1; l <= gt.count; l++) {
      if (hit[l]) gtHit++;
      count(gt.defectClass, hit[l] === 1);
    }
  } else {
    falseRegions = regions.length;
  }
  return { gtTotal, gtHit, perClass, predicted: regions.length, falseRegions };
}
