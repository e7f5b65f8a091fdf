/**
 * Evaluation metrics on constructed cases with known answers: AUROC, the confusion
 * matrix and its rates, regions from a map (stretched and letterbox packages) and
 * region matching against boxes and mask components.
 */
import { describe, it, expect } from 'vitest';
import { labelComponents, regionsFromMap } from '../inspector/inference/defect-regions.js';
import { auroc, confusion, groundTruthFromMask, matchRegions, operatingPoints, perClassRecall, precisionRecallF1 } from '../inspector/eval/metrics.js';
import { cellAreaPx, regionsInImage } from '../inspector/eval/map-geometry.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';

describe('metrics', () => {
  it('AUROC is 1 for a perfectly separated set, 0 for a reversed one, 0.5 for all ties', () => {
    const pos = [false, false, true, true];
    expect(auroc([0.1, 0.2, 0.8, 0.9], pos)).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], pos)).toBe(0);
    expect(auroc([0.5, 0.5, 0.5, 0.5], pos)).toBe(0.5);
    // 3 of the 4 (pos, neg) pairs ordered right: 0.35 < 0.4
    expect(auroc([0.1, 0.4, 0.35, 0.8], pos)).toBe(0.75);
    // one tie out of 4 pairs, the rest right: (3 + 0.5) / 4
    expect(auroc([0.1, 0.4, 0.4, 0.8], pos)).toBe(0.875);
    expect(auroc([0.1, 0.2], [true, true])).toBeNull();
  });

  it('confusion matrix, precision, recall, F1 and per-class recall', () => {
    const positive = [true, true, true, false, false, false, false];
    const predicted = [true, true, false, true, false, false, false];
    const c = confusion(predicted, positive);
    expect(c).toEqual({ tp: 2, fp: 1, tn: 3, fn: 1 });
    const m = precisionRecallF1(c);
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    expect(m.accuracy).toBeCloseTo(5 / 7, 12);
    expect(precisionRecallF1({ tp: 0, fp: 0, tn: 3, fn: 0 }).precision).toBeNull();
    expect(perClassRecall(['a', 'b', 'a', null], [true, false, false, true]))
      .toEqual({ a: { recall: 0.5, detected: 1, total: 2 }, b: { recall: 0, detected: 0, total: 1 } });
  });

  it('operating points: the highest threshold reaching each recall, and the false-reject rate it costs', () => {
    // 10 defective scores 0.91..1.00 except one low (0.30); 4 good scores
    const defect = [1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.3];
    const good = [0.1, 0.5, 0.935, 0.97];
    const scores = [...defect, ...good];
    const positive = scores.map((_, i) => i < defect.length);
    const [r99, r90, r50] = operatingPoints(scores, positive, [0.99, 0.9, 0.5]);
    // 0.99 of 10 -> all 10: the lowest defect, 0.30; goods 0.5, 0.935, 0.97 reach it
    expect(r99).toEqual({ target_recall: 0.99, threshold: 0.3, recall: 1, false_reject_rate: 0.75 });
    // 9 of 10 -> 0.92; goods 0.935 and 0.97 reach it
    expect(r90).toEqual({ target_recall: 0.9, threshold: 0.92, recall: 0.9, false_reject_rate: 0.5 });
    // 5 of 10 -> 0.96; only the good at 0.97
    expect(r50).toEqual({ target_recall: 0.5, threshold: 0.96, recall: 0.5, false_reject_rate: 0.25 });
    expect(operatingPoints([0.2, 0.4], [false, false])).toEqual([]);
    expect(operatingPoints([0.9], [true], [0.95])[0]!.false_reject_rate).toBeNull();
    expect(operatingPoints(defect, defect.map(() => true), [0.3])[0]!.threshold).toBe(0.98); // 3 of 10, not 4 (0.3 * 10 in floating point)
  });

  it('regions from a map: 8-connected components as frame-pixel boxes, min area, peak', () => {
    // 6x4 map: a 2-cell diagonal blob (one region under 8-connectivity), and a single far cell
    const w = 6, h = 4;
    const map = new Float32Array(w * h);
    map[0 * w + 1] = 0.9; map[1 * w + 2] = 0.7;   // diagonal neighbours
    map[3 * w + 5] = 0.6;                          // corner cell
    map[3 * w + 0] = 0.49;                         // below threshold
    const regions = regionsFromMap(map, w, h, 0.5, 0, { x: 10, y: 20 });
    expect(regions).toEqual([
      { x: 10, y: 0, w: 20, h: 40, areaPx: 400, peak: expect.closeTo(0.9, 6) },
      { x: 50, y: 60, w: 10, h: 20, areaPx: 200, peak: expect.closeTo(0.6, 6) },
    ]);
    expect(regionsFromMap(map, w, h, 0.5, 300, 1).length).toBe(0);   // scale 1: areas 2 and 1 px
    expect(regionsFromMap(map, w, h, 0.5, 300, { x: 10, y: 20 }).length).toBe(1);
    expect(labelComponents(map, w, h, 0.95).count).toBe(0);
    // a non-integer scale rounds boxes outwards: cell 1 of 3 over 10 px covers [3.33, 6.67) -> [3, 7)
    const r = regionsFromMap(Float32Array.from([0, 1, 0]), 3, 1, 0.5, 0, { x: 10 / 3, y: 5 });
    expect(r[0]).toMatchObject({ x: 3, y: 0, w: 4, h: 5 });
  });

  it('letterbox packages: map cells are mapped back through the scale and padding, clipped to the image', () => {
    const manifest = (resize: 'linear' | 'letterbox') => ({ input: { shape: [1, 1, 64, 64], resize },
      outputs: { map: { name: 'map', shape: [1, 1, 8, 8] } } }) as unknown as Manifest;
    // 300x900 in 64x64: scale 64/900, resized 21x64, left pad 21; a cell is 8 model px = 112.5 image px
    const map = new Float32Array(64);
    map[3] = 0.9;          // row 0, col 3: model x [24, 32) → image x [42.19, 154.69)
    map[8 * 2 + 0] = 0.9;  // row 2, col 0: all padding → dropped
    const lb = regionsInImage(manifest('letterbox'), map, 8, 8, 300, 900, 0.5, 0);
    expect(lb.map(({ x, y, w, h }) => ({ x, y, w, h }))).toEqual([{ x: 42, y: 0, w: 113, h: 113 }]);
    map[2] = 0.9;          // row 0, col 2: model x [16, 24) → image x [-70.3, 42.19), joins col 3, clipped at 0
    expect(regionsInImage(manifest('letterbox'), map, 8, 8, 300, 900, 0.5, 0).map(({ x, w }) => ({ x, w }))).toEqual([{ x: 0, w: 155 }]);
    // a stretched package maps the same cells to a stretched grid
    expect(regionsInImage(manifest('linear'), map, 8, 8, 300, 900, 0.5, 0).map(({ x, y, w, h }) => ({ x, y, w, h })))
      .toContainEqual({ x: 75, y: 0, w: 75, h: 113 });
    expect(cellAreaPx(manifest('letterbox'), 8, 8, 300, 900)).toBeCloseTo(112.5 * 112.5, 6);
    expect(cellAreaPx(manifest('linear'), 8, 8, 300, 900)).toBeCloseTo(300 * 900 / 64, 6);
  });

  it('region matching against boxes and mask components', () => {
    const boxes = [{ x1: 0, y1: 0, x2: 10, y2: 10, defectClass: 'open' }, { x1: 50, y1: 50, x2: 60, y2: 60, defectClass: 'short' }];
    const regions = [{ x: 5, y: 5, w: 4, h: 4, areaPx: 16, peak: 1 }, { x: 30, y: 30, w: 5, h: 5, areaPx: 25, peak: 1 }];
    const m = matchRegions(regions, { kind: 'boxes', boxes });
    expect(m).toMatchObject({ gtTotal: 2, gtHit: 1, falseRegions: 1, predicted: 2 });
    expect(m.perClass).toEqual({ open: { hit: 1, total: 1 }, short: { hit: 0, total: 1 } });
    // touching is not overlapping: [10, 14) vs [0, 10)
    expect(matchRegions([{ x: 10, y: 0, w: 4, h: 4, areaPx: 16, peak: 1 }], { kind: 'boxes', boxes }).gtHit).toBe(0);
    // mask with two components (>= 128); one region overlaps the first only
    const mw = 20, mh = 10;
    const mask = new Uint8Array(mw * mh);
    mask[2 * mw + 2] = 255; mask[2 * mw + 3] = 200;
    mask[8 * mw + 17] = 128;
    mask[5 * mw + 10] = 127;                       // below 128: not a defect
    const gt = groundTruthFromMask(mask, mw, mh, 'crack');
    const mm = matchRegions([{ x: 3, y: 2, w: 2, h: 2, areaPx: 4, peak: 1 }, { x: 9, y: 4, w: 3, h: 3, areaPx: 9, peak: 1 }], gt);
    expect(mm).toMatchObject({ gtTotal: 2, gtHit: 1, falseRegions: 1 });
    expect(matchRegions(regions, { kind: 'boxes', boxes: [] }).falseRegions).toBe(2);
  });
});
