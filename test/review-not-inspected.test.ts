/**
 * Parts the station did not inspect in the review queue and the stats: every part the line
 * numbered has a row, so the results database holds rejects with code NOT_INSPECTED (6) the
 * part loop wrote (dropped, camera error: no image) and rows the PLC's outcome made for parts
 * the station never saw (plc_status 'none', reason not_seen). Nothing to review in them: the
 * queue leaves them out (unless one has an image); the stats count them apart. A real results
 * database filled through ResultStore, HTTP through fastify.inject.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { ResultStore } from '../inspector/results/result-store.js';
import { buildApp } from '../inspector/server/app.js';
import { ResultCode, type PartReason } from '../inspector/core/types.js';

const RUN = 'run-ni';
const EPOCH = 77;
const H0 = Date.UTC(2026, 2, 4, 9, 0, 0);

let dir: string;
let app: FastifyInstance;
let auth: { authorization: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-not-inspected-'));
  const resultsDbPath = join(dir, 'results.sqlite');
  const store = await ResultStore.open({ dbPath: resultsDbPath, logger: logger.child({ test: 'review-not-inspected' }) });
  store.startRun(RUN, {});
  const base = { runId: RUN, modelName: 'default', modelVersion: '1.0.0', provider: 'cpu', plcStatus: 'acked' as const,
    sourceRef: null, anomalyMapPath: null, lineEpoch: EPOCH };
  const timings = { dispatchMs: 0.1, inferenceMs: 1, frameToVerdictMs: 2, plcWriteMs: 1 };
  const lostTimings = { dispatchMs: Number.NaN, inferenceMs: Number.NaN, frameToVerdictMs: Number.NaN, plcWriteMs: null };
  // parts 1-3 inspected: a pass, two rejects with images
  store.add({ ...base, seq: 1, partId: 1, capturedAtMs: H0 + 1000, verdict: 'pass', code: ResultCode.PASS, score: 0.1, timings,
    imagePath: null, defectClass: null, reason: null });
  store.add({ ...base, seq: 2, partId: 2, capturedAtMs: H0 + 2000, verdict: 'reject', code: ResultCode.DEFECT, score: 0.9, timings,
    imagePath: 'images/r/2.png', defectClass: 'scratch', reason: null });
  store.add({ ...base, seq: 3, partId: 3, capturedAtMs: H0 + 3000, verdict: 'reject', code: ResultCode.DEFECT, score: 0.8, timings,
    imagePath: 'images/r/3.png', defectClass: null, reason: null });
  // parts 4-5 not inspected by the part loop (no image), part 6 not inspected but with an image
  const lost = (seq: number, partId: number, at: number, reason: PartReason, imagePath: string | null) => store.add({
    ...base, seq, partId, capturedAtMs: at, verdict: 'reject', code: ResultCode.NOT_INSPECTED, score: Number.NaN, timings: lostTimings,
    imagePath, defectClass: null, reason });
  lost(4, 4, H0 + 4000, 'dropped', null);
  lost(5, 5, H0 + 5000, 'camera_error', null);
  lost(6, 6, H0 + 6000, 'dropped', 'images/r/6.png');
  // part 7: the station never saw it; the PLC's outcome made its row
  store.setGateOutcome({ lineEpoch: EPOCH, partId: 7, outcome: 'timeout', atMs: H0 + 7000, fill: { runId: RUN, seq: 7, capturedAtMs: H0 + 7000 } });
  await store.close();
  app = await buildApp({
    view: { health: async () => { throw new Error('no station'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) },
    logger: false, reviewDbPath: join(dir, 'review.sqlite'), resultsDbPath, imagesDir: join(dir, 'var'),
    model: { name: 'default', version: '1.0.0', threshold: 0.5, outputs: { kind: 'anomaly_map', defectClasses: ['scratch'] } },
    uiDir: join(dir, 'no-ui'),
  });
  const a = await app.review.accounts.create('qa1', 'qa1-password', 'qa');
  auth = { authorization: `Bearer ${app.review.accounts.createToken(a.id, 't').token}` };
});
afterAll(async () => { await app?.close(); if (dir) rmSync(dir, { recursive: true, force: true }); });

const get = async (url: string) => {
  const res = await app.inject({ method: 'GET', url, headers: auth });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};

describe('parts not inspected', () => {
  it('the review queue leaves out not-inspected parts without an image, in every view and page', async () => {
    expect((await get('/api/parts')).items.map((i: { seq: number }) => i.seq)).toEqual([6, 3, 2]);
    expect((await get('/api/parts?verdict=reject')).items.map((i: { seq: number }) => i.seq)).toEqual([6, 3, 2]);
    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const body = await get(`/api/parts?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...body.items.map((i: { seq: number }) => i.seq));
      cursor = body.nextCursor;
    } while (cursor && paged.length < 10);
    expect(paged).toEqual([6, 3, 2]);
    // the part itself can still be opened (its row says why it was not inspected)
    const part = await get(`/api/parts/${RUN}/4`);
    expect(part).toMatchObject({ seq: 4, code: ResultCode.NOT_INSPECTED, verdict: 'reject', hasImage: false });
  });

  it('the stats count them apart: in parts and rejects, not in the model classes', async () => {
    const s = await get(`/api/stats?from=${H0}&to=${H0 + 3_600_000}`);
    expect(s.totals).toMatchObject({ parts: 7, passes: 1, rejects: 6, notInspected: 4 });
    expect(s.hours).toHaveLength(1);
    expect(s.hours[0]).toMatchObject({ parts: 7, rejects: 6, notInspected: 4 });
    expect(s.rejectsByCode).toEqual([{ code: ResultCode.DEFECT, count: 2 }, { code: ResultCode.NOT_INSPECTED, count: 4 }]);
    expect(s.rejectsByModelClass).toEqual([{ defectClass: '(unclassified)', count: 1 }, { defectClass: 'scratch', count: 1 }]);
    const byModel = s.rejectsByModelClass.reduce((a: number, b: { count: number }) => a + b.count, 0);
    expect(byModel + s.totals.notInspected).toBe(s.totals.rejects);
    // the latency figures are the inspected parts'
    expect(s.hours[0].latency.count).toBe(3);
    expect(s.latencyHistogram.reduce((a: number, b: { count: number }) => a + b.count, 0)).toBe(3);
  });
});
