/**
 * GET /api/stats: rejects per model defect class (`rejectsByModelClass`, from
 * `results.defect_class`) beside rejects per QA label class (`rejectsByClass`),
 * over a real results database filled through ResultStore with known classes
 * and a real review database, in several time windows. HTTP through fastify.inject.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { ResultStore } from '../inspector/results/result-store.js';
import { buildApp } from '../inspector/server/app.js';
import type { ResultCodeValue } from '../inspector/core/types.js';

const RUN = 'run-mc';
const H0 = Date.UTC(2026, 1, 3, 8, 0, 0);
const H1 = H0 + 3_600_000;
const H2 = H1 + 3_600_000;

interface P { seq: number; at: number; verdict: 'pass' | 'reject'; code: ResultCodeValue; cls: string | null }
// hour 0: 3 scratch, 1 dent, 1 over-budget reject (no class), 2 passes; hour 1: 1 scratch, 2 dent, 1 pass
const PARTS: P[] = [
  [1, H0 + 1000, 'reject', 1, 'scratch'], [2, H0 + 2000, 'reject', 1, 'scratch'], [3, H0 + 3000, 'pass', 0, null],
  [4, H0 + 4000, 'reject', 1, 'dent'], [5, H0 + 5000, 'reject', 1, 'scratch'], [6, H0 + 6000, 'reject', 3, null],
  [7, H0 + 7000, 'pass', 0, null],
  [8, H1 + 1000, 'reject', 1, 'dent'], [9, H1 + 2000, 'reject', 1, 'scratch'], [10, H1 + 3000, 'reject', 1, 'dent'],
  [11, H1 + 4000, 'pass', 0, null],
].map(([seq, at, verdict, code, cls]) => ({ seq, at, verdict, code, cls }) as P);

/** What the route should say, counted here from PARTS: rejects per class, most first, then by name. */
function expected(from: number, to: number): Array<{ defectClass: string; count: number }> {
  const m = new Map<string, number>();
  for (const p of PARTS) if (p.verdict === 'reject' && p.at >= from && p.at < to) m.set(p.cls ?? '(unclassified)', (m.get(p.cls ?? '(unclassified)') ?? 0) + 1);
  return [...m].map(([defectClass, count]) => ({ defectClass, count }))
    .sort((a, b) => b.count - a.count || (a.defectClass < b.defectClass ? -1 : a.defectClass > b.defectClass ? 1 : 0));
}

let dir: string;
let app: FastifyInstance;
let auth: { authorization: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-stats-mc-'));
  const resultsDbPath = join(dir, 'results.sqlite');
  const store = await ResultStore.open({ dbPath: resultsDbPath, logger: logger.child({ test: 'stats-model-class' }) });
  store.startRun(RUN, {});
  for (const p of PARTS) {
    store.add({
      runId: RUN, seq: p.seq, capturedAtMs: p.at, verdict: p.verdict, code: p.code, score: p.verdict === 'reject' ? 0.9 : 0.1,
      modelName: 'multi', modelVersion: '1.0.0', provider: 'cpu',
      timings: { dispatchMs: 0.1, inferenceMs: 1, frameToVerdictMs: 2, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: null, imagePath: null, anomalyMapPath: null, defectClass: p.cls,
    });
  }
  await store.close();
  app = await buildApp({
    view: { health: async () => { throw new Error('no station'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) },
    logger: false, reviewDbPath: join(dir, 'review.sqlite'), resultsDbPath, imagesDir: join(dir, 'var'),
    model: { name: 'multi', version: '1.0.0', threshold: 0.5, outputs: { kind: 'segmentation', defectClasses: ['scratch', 'dent'] } },
    uiDir: join(dir, 'no-ui'),
  });
  const a = await app.review.accounts.create('qa1', 'qa1-password', 'qa');
  auth = { authorization: `Bearer ${app.review.accounts.createToken(a.id, 't').token}` };
});
afterAll(async () => { await app?.close(); if (dir) rmSync(dir, { recursive: true, force: true }); });

const stats = async (from: number, to: number) => {
  const res = await app.inject({ method: 'GET', url: `/api/stats?from=${from}&to=${to}`, headers: auth });
  expect(res.statusCode).toBe(200);
  return res.json() as { rejectsByClass: unknown; rejectsByModelClass: Array<{ defectClass: string; count: number }>; totals: { rejects: number } };
};

describe('stats: rejects per model defect class', () => {
  it('counts rejects by results.defect_class in each window, apart from the QA label counts', async () => {
    const windows: Array<[number, number]> = [[H0, H2], [H0, H1], [H1, H2], [H0 + 3500, H1 + 1500], [H2, H2 + 3_600_000]];
    for (const [from, to] of windows) {
      const s = await stats(from, to);
      expect(s.rejectsByModelClass, `${from}..${to}`).toEqual(expected(from, to));
      expect(s.rejectsByModelClass.reduce((a, b) => a + b.count, 0)).toBe(s.totals.rejects); // every reject once
      expect(s.rejectsByClass).toEqual([]); // no QA label yet
    }
    // the whole range, written out: 4 scratch, 3 dent, 1 over-budget reject without a class
    expect((await stats(H0, H2)).rejectsByModelClass).toEqual([
      { defectClass: 'scratch', count: 4 }, { defectClass: 'dent', count: 3 }, { defectClass: '(unclassified)', count: 1 }]);
  });

  it('keeps QA label classes in rejectsByClass: a label that disagrees with the model changes only that list', async () => {
    // QA says part 1 (the model's scratch) is a dent, and part 8 (the model's dent) is a false reject
    let res = await app.inject({ method: 'PUT', url: `/api/parts/${RUN}/1/label`, headers: auth, payload: { verdict: 'true_defect', defectClass: 'dent', regions: [], revision: 0 } });
    expect(res.statusCode).toBe(200);
    res = await app.inject({ method: 'PUT', url: `/api/parts/${RUN}/8/label`, headers: auth, payload: { verdict: 'false_reject', regions: [], revision: 0 } });
    expect(res.statusCode).toBe(200);
    const s = await stats(H0, H2);
    expect(s.rejectsByClass).toEqual([{ defectClass: 'dent', count: 1 }]);
    expect(s.rejectsByModelClass).toEqual(expected(H0, H2));
    expect((await stats(H1, H2)).rejectsByClass).toEqual([]); // part 1's label is in hour 0
  });
});
