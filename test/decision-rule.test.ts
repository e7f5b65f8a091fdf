import { afterAll, describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { decide } from '../inspector/station/verdict.js';
import { defectAreaPx, effectiveThreshold, mapCellAreaPx } from '../inspector/inference/decision-rule.js';
import type { Manifest } from '../inspector/inference/manifest-schema.js';
import { ResultCode } from '../inspector/core/types.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';
import { PartLoop } from '../inspector/station/part-loop.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import { Alarms } from '../inspector/station/alarms.js';
import type { Frame, ResultRecord } from '../inspector/core/types.js';
import { lineIdentity } from './helpers/line-identity.js';
import { S, classChannels, frameWith, segmentationModel, tinyRunner, writeTinyPackage } from './helpers/tiny-class-models.js';

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

// ---------------------------------------------------------------- per-class thresholds on real ONNX models


const log = logger.child({ test: 'decision-rule' });
const work = mkdtempSync(join(tmpdir(), 'inspector-decision-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const CLASSES = ['background', 'bright', 'dark'];

/** classification [1,3] from the frame mean; the image score is p(bright) */
function classificationModel(): Uint8Array {
  const g = new GraphBuilder('cls3');
  g.input('image', 'float32', [1, 1, S, S]);
  const x = g.op('Reshape', [g.op('GlobalAveragePool', ['image']), g.constI64('shape', [2], [1, 1])]);
  const c = classChannels(g, x);
  g.node('Concat', [c.bg, c.bright, c.dark], ['probabilities'], { axis: attr.int(1) });
  g.node('Reshape', [c.bright, g.constI64('score_shape', [1], [1])], ['score']);
  g.output('score', 'float32', [1]);
  g.output('probabilities', 'float32', [1, 3]);
  return encodeModel(createModel(g.build()));
}

let pkgN = 0;
function writePackage(model: Uint8Array, kind: 'segmentation' | 'classification', minDefectAreaPx = 0): string {
  const outputs = kind === 'segmentation'
    ? { kind, score: { name: 'score', shape: [1] }, map: { name: 'seg_map', shape: [1, 3, 4, 4] }, classes: CLASSES, defectClasses: ['bright', 'dark'] }
    : { kind, score: { name: 'score', shape: [1] }, probabilities: { name: 'probabilities', shape: [1, 3] }, classes: CLASSES, defectClasses: ['bright', 'dark'] };
  return writeTinyPackage(join(work, `pkg${++pkgN}`), `multi-${kind}`, model, outputs,
    { threshold: 0.5, classThresholds: { dark: 0.9 }, minDefectAreaPx }, 'test/decision-rule.test.ts');
}

const runnerFor = (dir: string): Promise<ModelRunner> => tinyRunner(dir, log);

/** a mid-gray frame with 8x8 cells set to given values (cell index 0..15, row-major) */

describe('per-class thresholds of multi-class outputs', () => {
  it('segmentation [1,K,h,w]: any defect class at its own threshold rejects; the worst class is named; background is ignored', async () => {
    const r = await runnerFor(writePackage(segmentationModel(), 'segmentation'));
    try {
      const rule = r.classRule!;
      expect(rule).not.toBeNull();
      expect(rule.names).toEqual(['bright', 'dark']);
      expect([...rule.thresholds]).toEqual([0.5, 0.9]); // dark: its class threshold; bright: falls back to decision.threshold
      const run = async (cells: Record<number, number>, minArea = 0) => {
        const out = await r.infer(frameWith(cells));
        return { ...rule.decide(out.score, out.map, minArea), cls: rule.worstClass, score: out.score, worst: rule.worstScore };
      };
      expect(await run({})).toMatchObject({ verdict: 'pass', code: ResultCode.PASS, cls: null }); // background σ(3)=0.95 does not count
      expect(await run({ 5: 255 })).toMatchObject({ verdict: 'reject', code: ResultCode.DEFECT, cls: 'bright' });
      // a dark defect: the image score (bright only) is low, the old rule passed it; the per-class rule rejects
      const dark = await run({ 9: 0 });
      expect(dark.score).toBeLessThan(0.5);
      expect(decide(dark.score, r.threshold).verdict).toBe('pass');
      expect(dark).toMatchObject({ verdict: 'reject', cls: 'dark' });
      expect(dark.worst).toBeCloseTo(1 / (1 + Math.exp(-4)), 4);
      // moderately dark: σ(0.86)≈0.70 — above the fallback 0.5 but below dark's own 0.9 → pass
      expect(await run({ 9: 50 })).toMatchObject({ verdict: 'pass', cls: null });
      // both: the worst (highest) class is the verdict's class
      expect((await run({ 1: 255, 14: 10 })).cls).toBe('bright');
      expect((await run({ 1: 200, 14: 0 })).cls).toBe('dark');
      // minDefectAreaPx: one bright cell is 64 frame px; 128 needs two
      expect((await run({ 5: 255 }, 128)).verdict).toBe('pass');
      expect((await run({ 5: 255, 6: 255 }, 128)).verdict).toBe('reject');
      // a dark cell of 64 px and a bright pair: only bright is big enough
      expect(await run({ 5: 255, 6: 255, 9: 0 }, 128)).toMatchObject({ verdict: 'reject', cls: 'bright' });
      expect(decide(Number.NaN, 0.5).code).toBe(ResultCode.INFERENCE_ERROR);
      expect(rule.decide(Number.NaN, r.map, 0).code).toBe(ResultCode.INFERENCE_ERROR);
    } finally { await r.close(); }
  }, 60_000);

  it('classification [1,K]: the probabilities reach the rule (the runner still reports no map)', async () => {
    const r = await runnerFor(writePackage(classificationModel(), 'classification'));
    try {
      expect(r.mapWidth * r.mapHeight).toBe(0);
      const rule = r.classRule!;
      const run = async (v: number) => {
        const out = await r.infer(new Uint8Array(S * S).fill(v));
        return { ...rule.decide(out.score, out.map, 0), cls: rule.worstClass, score: out.score };
      };
      expect(await run(128)).toMatchObject({ verdict: 'pass', cls: null });
      expect(await run(255)).toMatchObject({ verdict: 'reject', cls: 'bright' });
      const dark = await run(0);
      expect(decide(dark.score, r.threshold).verdict).toBe('pass'); // the image score alone misses it
      expect(dark).toMatchObject({ verdict: 'reject', cls: 'dark' });
      expect((await run(50)).verdict).toBe('pass'); // p(dark)≈0.70 < 0.9
    } finally { await r.close(); }
  }, 60_000);

  it('the validation gate scores a multi-class candidate with the same per-class rule', async () => {
    const { scoreGolden } = await import('../inspector/registry/validation-gate.js');
    const r = await runnerFor(writePackage(segmentationModel(), 'segmentation'));
    try {
      const golden = { dir: work, width: S, height: S, images: [
        { file: 'good.png', label: 'good' as const, data: frameWith() },
        { file: 'bright.png', label: 'defect' as const, data: frameWith({ 5: 255 }) },
        { file: 'dark.png', label: 'defect' as const, data: frameWith({ 9: 0 }) },      // the image score alone calls this good
        { file: 'grayish.png', label: 'good' as const, data: frameWith({ 9: 50 }) },  // above 0.5, below dark's 0.9
      ] };
      const acc = await scoreGolden(r, golden);
      expect(acc.correct).toBe(4);
      expect(acc.scores[2]!).toBeLessThan(0.5);
    } finally { await r.close(); }
  }, 60_000);

  it('single-channel packages keep the image-score rule (no class rule)', async () => {
    const r = await ModelRunner.create({ packageDir: 'models/default/1.0.0', frame: { width: 1280, height: 1024 }, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    try { expect(r.classRule).toBeNull(); } finally { await r.close(); }
  }, 60_000);

  it('on the line: the part loop sends the per-class verdict to the PLC and the store, and counts the worst class', async () => {
    const r = await runnerFor(writePackage(segmentationModel(), 'segmentation', 100));
    const writes: Array<{ partId: number; pass: boolean; code: number }> = [];
    const records: ResultRecord[] = [];
    const maps: Array<{ seq: number; data: Float32Array; width: number; height: number }> = [];
    const plc = { writeResult: async (partId: number, _epoch: number, pass: boolean, code: number) => { writes.push({ partId, pass, code }); return 1; } };
    const store = { add: (rec: ResultRecord) => { records.push(rec); }, update: () => undefined };
    const images = { offer: (job: { seq: number; map?: { data: Float32Array; width: number; height: number } }) => {
      if (job.map) maps.push({ seq: job.seq, data: job.map.data.slice(), width: job.map.width, height: job.map.height });
      return 'x.png';
    } };
    const metrics = new StationMetrics(() => ({ camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 },
      plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } }), { station: 't' });
    const loop = new PartLoop(r, plc, store, images, metrics, new Alarms(log, () => undefined),
      { runId: 'r1', budgetMs: 1000, saveImages: 'all', passSampleEvery: 1, doubtMargin: 0, identity: lineIdentity() });
    const frames = [frameWith(), frameWith({ 9: 0 }), frameWith({ 9: 0, 10: 0 }), frameWith({ 0: 255, 1: 255 })];
    async function* source(): AsyncGenerator<Frame> {
      let seq = 0;
      for (const data of frames) { seq++; yield { seq, partId: seq, lineEpoch: 1, capturedNs: process.hrtime.bigint(), width: S, height: S, format: 'GRAY8', data }; }
    }
    try {
      await loop.run(source());
      await loop.drain();
      // pass; one dark cell (64 px < 100: too small); two dark cells (128 px); two bright cells
      expect(writes.map((w) => [w.partId, w.pass, w.code])).toEqual([[1, true, 0], [2, true, 0], [3, false, 1], [4, false, 1]]);
      expect(records.map((x) => x.verdict)).toEqual(['pass', 'pass', 'reject', 'reject']);
      const text = (await metrics.text()).body;
      expect(text).toMatch(/inspector_rejects_by_class_total\{class="dark"[^}]*\} 1\n/);
      expect(text).toMatch(/inspector_rejects_by_class_total\{class="bright"[^}]*\} 1\n/);
      // the saved map is the defect channels' max per cell (4x4), not the background channel
      const m3 = maps.find((m) => m.seq === 3)!;
      expect([m3.width, m3.height, m3.data.length]).toEqual([4, 4, 16]);
      expect(m3.data[9]).toBeCloseTo(1 / (1 + Math.exp(-4)), 4);
      expect(Math.max(...m3.data)).toBeLessThan(0.99); // background is σ(3)=0.953 in every cell; mid-gray defect cells are ~0.02
      expect(m3.data[0]).toBeLessThan(0.1);
    } finally { await r.close(); }
  }, 60_000);
});
