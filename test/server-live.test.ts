/**
 * The live feed (main-thread LiveFeed ring → server LiveHub → WebSocket), the
 * newest-frame JPEG, OpenAPI coverage of every route, and the UI-missing page.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { LiveFeed, type LiveMessage } from '../inspector/server/live-feed.js';
import type { HealthReport } from '../inspector/server/station-view.js';
import { logger } from '../inspector/core/logger.js';
import type { Frame } from '../inspector/core/types.js';
import { ResultStore } from '../inspector/results/result-store.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { PartLoop } from '../inspector/station/part-loop.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import { Alarms } from '../inspector/station/alarms.js';
import { lineIdentity } from './helpers/line-identity.js';
import { CLASS_FRAME, classFrame, writeSegmentationPackage } from './helpers/class-packages.js';

const W = 320;
const H = 256;
const health = { status: 'up', station: 's1', uptimeS: 1, parts: 3, alarms: [] } as unknown as HealthReport;

describe('LiveFeed (main thread)', () => {
  it('batches parts from its ring, computes rolling stats, and copies a frame only when asked', async () => {
    const feed = LiveFeed.allocate('run-x', W, H);
    const frame = new Uint8Array(W * H).fill(7);
    const ms = [2, 4, 6, 8, 100];
    const classes = ['scratch', 'dent']; // the package's class list: the ring keeps references into it
    ms.forEach((m, i) => feed.part(i + 1, i % 2 ? 'reject' : 'pass', i % 2, i / 10, m, '1.0.0', i === 1, frame, i % 2 ? classes[(i - 1) / 2]! : null));
    const items = feed.drainParts();
    expect(items.map((p) => [p.seq, p.verdict, p.code, p.frameToVerdictMs, p.imageSaved, p.defectClass])).toEqual(
      [[1, 'pass', 0, 2, false, null], [2, 'reject', 1, 4, true, 'scratch'], [3, 'pass', 0, 6, false, null], [4, 'reject', 1, 8, false, 'dent'], [5, 'pass', 0, 100, false, null]]);
    expect(feed.drainParts()).toEqual([]); // each part is sent once
    const s = feed.stats(5000);
    expect(s).toMatchObject({ rejectRate: 2 / 5, p50Ms: 6, p99Ms: 100, partsPerSec: 1, parts: 5 });
    expect(new Uint8Array(feed.frameBuffer)[0]).toBe(0); // nothing copied until someone asks
    const next = feed.nextFrame(5000);
    feed.part(6, 'pass', 0, 0.1, 3, '1.0.0', false, frame); // a caller without a class (older signature): null
    expect(await next).toMatchObject({ seq: 6, width: W, height: H });
    expect(feed.drainParts().map((p) => [p.seq, p.defectClass])).toEqual([[6, null]]);
    expect(new Uint8Array(feed.frameBuffer).every((v) => v === 7)).toBe(true);
    await expect(feed.nextFrame(20)).rejects.toMatchObject({ code: 'INSPECTOR_NO_FRAME' });
  });
});

describe('LiveFeed: the model\'s defect class per part', () => {
  it('a reused ring slot does not keep the class of the part it held before', () => {
    const feed = LiveFeed.allocate('run-w', 4, 4);
    const frame = new Uint8Array(16);
    const cls = ['dent'];
    for (let seq = 1; seq <= 1024; seq++) feed.part(seq, 'reject', 1, 0.9, 2, '1.0.0', false, frame, cls[0]!);
    expect(feed.drainParts(2000).every((p) => p.defectClass === 'dent')).toBe(true);
    feed.part(1025, 'pass', 0, 0.1, 2, '1.0.0', false, frame, null); // slot 0 again
    feed.part(1026, 'reject', 3, 0.2, 2, '1.0.0', false, frame); // over budget: no class
    expect(feed.drainParts().map((p) => [p.seq, p.verdict, p.defectClass])).toEqual([[1025, 'pass', null], [1026, 'reject', null]]);
  });

  it('the part loop on a real multi-class ONNX package puts the stored class of each reject on its live item', async () => {
    const log = logger.child({ test: 'server-live' });
    const dir = mkdtempSync(join(tmpdir(), 'inspector-live-class-'));
    const runner = await ModelRunner.create({ packageDir: writeSegmentationPackage(join(dir, 'seg')), frame: { width: CLASS_FRAME, height: CLASS_FRAME },
      providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    const store = await ResultStore.open({ dbPath: join(dir, 'results.sqlite'), logger: log });
    try {
      const metrics = new StationMetrics(() => ({ camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 },
        plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } }), { station: 't' });
      const loop = new PartLoop(runner, { writeResult: async () => 1 }, store, { offer: () => null }, metrics, new Alarms(log, () => undefined),
        { runId: 'live-run', budgetMs: 10_000, saveImages: 'none', passSampleEvery: 1, doubtMargin: 0, identity: lineIdentity() });
      const feed = LiveFeed.allocate('live-run', CLASS_FRAME, CLASS_FRAME);
      loop.feed = feed;
      // pass; dark cell; bright cell; dark beats a weaker bright; pass (as in result-defect-class.test.ts)
      const frames = [classFrame(), classFrame({ 9: 0 }), classFrame({ 0: 255 }), classFrame({ 5: 0, 6: 208 }), classFrame({ 3: 140 })];
      async function* source(): AsyncGenerator<Frame> {
        let seq = 0;
        for (const data of frames) { seq++; yield { seq, partId: seq, lineEpoch: 1, capturedNs: process.hrtime.bigint(), width: CLASS_FRAME, height: CLASS_FRAME, format: 'GRAY8', data }; }
      }
      await loop.run(source());
      await loop.drain();
      const items = feed.drainParts();
      expect(items.map((p) => [p.seq, p.verdict, p.defectClass])).toEqual([
        [1, 'pass', null], [2, 'reject', 'dark'], [3, 'reject', 'bright'], [4, 'reject', 'dark'], [5, 'pass', null]]);
      const rows = await store.query({ runId: 'live-run', limit: 10 });
      expect(items.map((p) => p.defectClass)).toEqual([...rows].sort((a, b) => a.seq - b.seq).map((r) => r.defect_class)); // the live item says what was stored
    } finally { await store.close(); await runner.close(); rmSync(dir, { recursive: true, force: true }); }
  }, 60_000);
});

describe('live routes', () => {
  let app: FastifyInstance;
  let dir: string;
  let token: string;
  let frameCalls = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inspector-live-'));
    const pixels = new Uint8Array(W * H);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i % W) % 256;
    app = await buildApp({
      logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'missing-ui'),
      view: {
        health: async () => health, metrics: async () => ({ contentType: 'text/plain', body: '' }),
        call: async <T>(method: string): Promise<T> => {
          if (method === 'liveFrame') { frameCalls++; await new Promise((r) => setTimeout(r, 30)); return { seq: 42, width: W, height: H, at: Date.now(), data: pixels } as T; }
          if (method === 'model') return { name: 'm', version: '2.0.0', threshold: 0.5, outputs: { classes: ['good', 'crack'] } } as T;
          throw new Error(`unexpected ${method}`);
        },
      },
    });
    const a = await app.review.accounts.create('op', 'operator-password', 'operator');
    token = app.review.accounts.createToken(a.id, 't').token;
  });
  afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('fans live messages out over the WebSocket; a new client gets the latest stats and health at once', async () => {
    app.live.publish({ type: 'stats', partsPerSec: 20, rejectRate: 0.1, p50Ms: 2, p99Ms: 5, parts: 100 });
    app.live.publish({ type: 'health', report: health });
    const got: LiveMessage[] = [];
    const ws = await app.injectWS('/api/live', { headers: { authorization: `Bearer ${token}` } }, {
      onInit: (s) => s.on('message', (d: Buffer) => got.push(JSON.parse(String(d)) as LiveMessage)),
    });
    const part = { runId: 'r', seq: 9, verdict: 'reject' as const, code: 1, score: 0.9, frameToVerdictMs: 3, modelVersion: '2.0.0', imageSaved: true, at: Date.now(), defectClass: 'crack' };
    app.live.publish({ type: 'parts', items: [part] });
    for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    ws.terminate();
    expect(got.map((m) => m.type)).toEqual(['stats', 'health', 'parts']);
    expect(got[2]).toEqual({ type: 'parts', items: [part] });
  });

  it('refuses the WebSocket to anonymous callers', async () => {
    await expect(app.injectWS('/api/live')).rejects.toThrow(/401/);
  });

  it('serves the newest frame as a downscaled JPEG, one station request for concurrent callers', async () => {
    const before = frameCalls;
    const res = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'GET', url: '/api/live/frame.jpg?width=160', headers: { authorization: `Bearer ${token}` } })));
    expect(frameCalls - before).toBe(1);
    for (const r of res) {
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('image/jpeg');
      expect(r.headers['x-part-seq']).toBe('42');
      const meta = await sharp(r.rawPayload).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 128]);
    }
  });

  it('derives the class list from the live model (classes minus good)', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/classes', headers: { authorization: `Bearer ${token}` } });
    expect(res.json()).toEqual({ classes: ['crack'] });
  });

  it('publishes every route with a schema in the OpenAPI document at /docs', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    const paths = Object.keys(doc.paths);
    for (const r of app.routeAccess) {
      expect(r.schema, `${r.method} ${r.url} has no schema`).toBe(true);
      if (r.websocket) continue; // OpenAPI 3 has no WebSockets; @fastify/swagger leaves them out
      const openapiPath = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
      expect(paths, `${r.method} ${r.url}`).toContain(openapiPath);
    }
    expect((await app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('answers / with a 503 page that says how to build the UI when ui/dist is missing', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toContain('scripts/build-ui.ts');
  });
});
