import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { decide } from '../inspector/station/verdict.js';
import { defectAreaPx, effectiveThreshold, mapCellAreaPx } from '../inspector/inference/decision-rule.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { ResultCode } from '../inspector/core/types.js';

const base = JSON.parse(readFileSync('models/default/1.0.0/manifest.json', 'utf8')) as Manifest;
const withDecision = (decision: Record<string, unknown>): Manifest => ({ ...base, decision: { ...base.decision, ...decision } } as Manifest);

describe('the package decision rule', () => {
  it('uses the single defect class threshold when the package gives one', () => {
    expect(effectiveThreshold(base)).toBe(base.decision.threshold);
    expect(effectiveThreshold(withDecision({ classThresholds: { defect: 0.8 } }))).toBe(0.8);
    expect(effectiveThreshold(withDecision({ classThresholds: { other: 0.8 } }))).toBe(base.decision.threshold);
  });

  it('measures the defect area in frame pixels from the map cells at or above the threshold', () => {
    const cell = mapCellAreaPx(base, 1280, 1024); // 32x40 map over 1280x1024: 32x32 px per cell
    expect(cell).toBe(1024);
    const map = new Float32Array(32 * 40);
    map[5] = 0.9; map[6] = 0.5; map[7] = 0.49;
    expect(defectAreaPx(map, 0.5, cell)).toBe(2 * 1024);
    expect(Number.isNaN(defectAreaPx(map, 0.5, Number.NaN))).toBe(true);
  });

  it('passes a defect smaller than the minimum area and rejects one at or above it', () => {
    expect(decide(0.9, 0.5, 1000, 2048)).toEqual({ verdict: 'pass', code: ResultCode.PASS });
    expect(decide(0.9, 0.5, 2048, 2048)).toEqual({ verdict: 'reject', code: ResultCode.DEFECT });
    expect(decide(0.9, 0.5, Number.NaN, 2048).verdict).toBe('reject'); // no map: the score decides
    expect(decide(0.4, 0.5, 1e6, 0).verdict).toBe('pass');
    expect(decide(Number.NaN, 0.5).code).toBe(ResultCode.INFERENCE_ERROR);
  });
});
