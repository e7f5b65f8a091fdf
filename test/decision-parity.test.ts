/**
 * One rule, four judges: the same real ONNX outputs through the line (PartLoop → the PLC write),
 * the shadow (ShadowTap → the stored shadow verdict), the validation gate (scoreGolden) and eval
 * (runEval's per-image verdict) give the same verdicts, including the cases the gate and the
 * shadow used to get wrong: a region above the threshold but below the package's
 * minDefectAreaPx, a score between the threshold and the single class's own threshold, and a
 * multi-class package's per-class thresholds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { writeGrayPng } from '../inspector/core/gray-image.js';
import type { Frame, ResultRecord, Verdict } from '../inspector/core/types.js';
import type { ModelRunner } from '../inspector/inference/model-runner.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';
import { decide } from '../inspector/station/verdict.js';
import { PartLoop } from '../inspector/station/part-loop.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import { Alarms } from '../inspector/station/alarms.js';
import { ShadowTap } from '../inspector/registry/shadow-tap.js';
import { scoreGolden } from '../inspector/registry/validation-gate.js';
import { runEval } from '../inspector/eval/run-eval.js';
import type { EvalDataset } from '../inspector/eval/dataset-types.js';
import { lineIdentity } from './helpers/line-identity.js';
import { S, classChannels, frameWith, pooledInput, segmentationModel, tinyRunner, writeTinyPackage } from './helpers/tiny-class-models.js';

const log = logger.child({ test: 'decision-parity' });
const work = mkdtempSync(join(tmpdir(), 'inspector-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
/** single-channel anomaly map [1,1,4,4] (the `bright` channel), score = its max */
function anomalyModel(): Uint8Array {
  const g = new GraphBuilder('anom1');
  g.node('Identity', [classChannels(g, pooledInput(g)).bright], ['anomaly_map']);
  g.node('ReduceMax', ['anomaly_map'], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('anomaly_map', 'float32', [1, 1, 4, 4]);
  return encodeModel(createModel(g.build()));
}
const multiClassModel = segmentationModel; // background (never a defect), bright, dark; score = max of bright

function writePackage(name: string, model: Uint8Array, outputs: object, decision: object): string {
  return writeTinyPackage(join(work, 'models', name, '1.0.0'), name, model, outputs, decision, 'test/decision-parity.test.ts');
}

/** a mid-gray frame with 8x8 cells (index 0..15, row-major) set to given values */

const runnerFor = (dir: string): Promise<ModelRunner> => tinyRunner(dir, log);

async function viaLine(dir: string, frames: Uint8Array[]): Promise<Verdict[]> {
  const r = await runnerFor(dir);
  const writes: Array<{ partId: number; pass: boolean }> = [];
  const plc = { writeResult: async (partId: number, _e: number, pass: boolean) => { writes.push({ partId, pass }); return 1; } };
  const store = { add: (_rec: ResultRecord) => undefined, update: () => undefined };
  const metrics = new StationMetrics(() => ({ camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 },
    plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } }), { station: 't' });
  const loop = new PartLoop(r, plc, store, { offer: () => null }, metrics, new Alarms(log, () => undefined),
    { runId: 'r1', budgetMs: 1000, saveImages: 'none', passSampleEvery: 1, doubtMargin: 0, identity: lineIdentity() });
  async function* source(): AsyncGenerator<Frame> {
    let seq = 0;
    for (const data of frames) { seq++; yield { seq, partId: seq, lineEpoch: 1, capturedNs: process.hrtime.bigint(), width: S, height: S, format: 'GRAY8', data }; }
  }
  try {
    await loop.run(source());
    await loop.drain();
  } finally { await r.close(); }
  return writes.sort((a, b) => a.partId - b.partId).map((w) => (w.pass ? 'pass' : 'reject'));
}

async function viaShadow(dir: string, frames: Uint8Array[]): Promise<Verdict[]> {
  const r = await runnerFor(dir);
  const out: Verdict[] = [];
  const sinks = { store: { addShadow: (row: unknown[]) => { out.push(row[5] as Verdict); } }, images: { offer: () => null } };
  try {
    for (const [i, data] of frames.entries()) {
      const tap = new ShadowTap(r, sinks, log); // stop() waits for the one frame in flight
      const frame = { seq: i + 1, capturedNs: 0n, width: S, height: S, format: 'GRAY8', data } as Frame;
      expect(tap.offer(frame, { runId: 'r1', verdict: 'pass', score: 0, modelName: 'live', modelVersion: '1.0.0', imageQueued: true })).toBe(true);
      await tap.stop();
    }
  } finally { await r.close(); }
  return out;
}

async function viaGate(dir: string, frames: Uint8Array[]): Promise<{ verdicts: Verdict[]; scores: number[] }> {
  const r = await runnerFor(dir);
  const verdicts: Verdict[] = [];
  const scores: number[] = [];
  try {
    for (const data of frames) {
      // one image labelled good: correct = the gate judged it a pass
      const acc = await scoreGolden(r, { dir: work, width: S, height: S, images: [{ file: 'x.png', label: 'good', data }] });
      verdicts.push(acc.correct === 1 ? 'pass' : 'reject');
      scores.push(acc.scores[0]!);
    }
  } finally { await r.close(); }
  return { verdicts, scores };
}

async function viaEval(dir: string, frames: Uint8Array[], tag: string): Promise<Verdict[]> {
  const root = join(work, `dataset-${tag}`);
  mkdirSync(root, { recursive: true });
  const items = [];
  for (const [i, data] of frames.entries()) {
    const image = join(root, `f${i}.png`);
    await writeGrayPng(image, { width: S, height: S, data });
    items.push({ id: `f${i}.png`, image, label: 'good' as const, defectClass: null, mask: null, boxes: null });
  }
  const dataset: EvalDataset = { layout: 'folder', root, split: null, items, classes: [] };
  const report = await runEval({ dataset, modelDir: dir, perImage: true, log });
  const recs = (report as unknown as { per_image: Array<{ id: string; predictedDefect: boolean }> }).per_image;
  return items.map((it) => (recs.find((x) => x.id === it.id)!.predictedDefect ? 'reject' : 'pass'));
}

async function allFour(dir: string, frames: Uint8Array[], tag: string) {
  const line = await viaLine(dir, frames);
  const shadow = await viaShadow(dir, frames);
  const gate = await viaGate(dir, frames);
  const evaluated = await viaEval(dir, frames, tag);
  return { line, shadow, gate: gate.verdicts, eval: evaluated, scores: gate.scores };
}

describe('the line, the shadow, the validation gate and eval decide alike', () => {
  it('a single-class package with a per-class threshold and minDefectAreaPx > 0', async () => {
    const dir = writePackage('parity-anomaly', anomalyModel(),
      { kind: 'anomaly_map', score: { name: 'score', shape: [1] }, map: { name: 'anomaly_map', shape: [1, 1, 4, 4] }, classes: ['good', 'defect'], defectClasses: ['defect'] },
      { threshold: 0.5, classThresholds: { defect: 0.7 }, minDefectAreaPx: 100 });
    const frames = [
      frameWith(),                    // clean: pass
      frameWith({ 5: 255 }),          // one bright cell, 64 px < 100 px: a region below the minimum area: pass
      frameWith({ 5: 255, 6: 255 }),  // two cells, 128 px: reject
      frameWith({ 5: 198, 6: 198 }),  // 0.60: above decision.threshold 0.5, below the class's own 0.7: pass
      frameWith({ 0: 255, 15: 255 }), // two separate cells, 128 px in all: reject (the area is the map's, as on the line)
    ];
    const expected: Verdict[] = ['pass', 'pass', 'reject', 'pass', 'reject'];
    const got = await allFour(dir, frames, 'anomaly');
    expect(got.line).toEqual(expected);
    expect(got.shadow).toEqual(expected);
    expect(got.gate).toEqual(expected);
    expect(got.eval).toEqual(expected);
    // the old gate/shadow rule (score vs decision.threshold only) would have rejected frames 1 and 3
    expect(frames.map((_, i) => decide(got.scores[i]!, 0.5).verdict)).toEqual(['pass', 'reject', 'reject', 'reject', 'reject']);
  }, 180_000);

  it('a multi-class package: per-class thresholds and the minimum area per class channel', async () => {
    const dir = writePackage('parity-multi', multiClassModel(),
      { kind: 'segmentation', score: { name: 'score', shape: [1] }, map: { name: 'seg_map', shape: [1, 3, 4, 4] },
        classes: ['background', 'bright', 'dark'], defectClasses: ['bright', 'dark'] },
      { threshold: 0.5, classThresholds: { dark: 0.9 }, minDefectAreaPx: 100 });
    const frames = [
      frameWith(),                   // background σ(3) is no defect class: pass
      frameWith({ 9: 0 }),           // one dark cell (64 px): too small: pass
      frameWith({ 9: 0, 10: 0 }),    // two dark cells: reject (the image score alone, bright only, calls it good)
      frameWith({ 9: 50, 10: 50 }),  // p(dark) ≈ 0.70: below dark's own 0.9: pass
      frameWith({ 1: 255, 2: 255 }), // two bright cells: reject
    ];
    const expected: Verdict[] = ['pass', 'pass', 'reject', 'pass', 'reject'];
    const got = await allFour(dir, frames, 'multi');
    expect(got.line).toEqual(expected);
    expect(got.shadow).toEqual(expected);
    expect(got.gate).toEqual(expected);
    expect(got.eval).toEqual(expected);
    expect(decide(got.scores[2]!, 0.5).verdict).toBe('pass'); // the image score alone misses the dark defect
  }, 180_000);
});
