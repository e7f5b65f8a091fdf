/**
 * The verdict's defect class stored with each result: schema migration v2 → v3 on a real file
 * written with the old schema, the part loop on real ONNX packages writing through the real
 * ResultStore (multi-class: the worst class; one-class: its single class on DEFECT rejects),
 * and the parts API (list, detail, `class` filter) reading it back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { Frame } from '../inspector/core/types.js';
import { ResultStore, openReadOnly, type ResultRow } from '../inspector/results/result-store.js';
import { MIGRATIONS } from '../inspector/results/results-schema.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { PartLoop } from '../inspector/station/part-loop.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import { Alarms } from '../inspector/station/alarms.js';
import { readGray } from '../inspector/core/gray-image.js';
import { buildApp } from '../inspector/server/app.js';
import { CLASS_FRAME, classFrame, writeSegmentationPackage } from './helpers/class-packages.js';
import { lineIdentity } from './helpers/line-identity.js';

const log = logger.child({ test: 'result-defect-class' });
let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'inspector-defect-class-')); });
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

/** The results table's columns before v3, as the v2 store worker inserted them. */
const V2_COLUMNS = ['run_id', 'seq', 'captured_at_ms', 'verdict', 'code', 'score', 'model_name', 'model_version', 'provider',
  'dispatch_ms', 'inference_ms', 'frame_to_verdict_ms', 'plc_write_ms', 'plc_status', 'source_ref', 'image_path', 'anomaly_map_path'];

describe('schema v3: results.defect_class', () => {
  it('a results.sqlite written by the v2 schema opens, migrates, keeps every row, and takes classes after', async () => {
    const dbPath = join(work, 'old.sqlite');
    // the file as the previous version left it: migrations 1 and 2, rows, a parked update, a shadow row
    const old = new Database(dbPath);
    old.pragma('journal_mode = WAL');
    for (const [i, sql] of MIGRATIONS.slice(0, 2).entries()) { old.exec(sql); old.pragma(`user_version = ${i + 1}`); }
    old.prepare('INSERT INTO runs (run_id, started_at_ms, config_json) VALUES (?, ?, ?)').run('old-run', 1_700_000_000_000, '{"v":2}');
    const ins = old.prepare(`INSERT INTO results (${V2_COLUMNS.join(', ')}) VALUES (${V2_COLUMNS.map(() => '?').join(', ')})`);
    for (let seq = 1; seq <= 50; seq++) {
      ins.run('old-run', seq, 1_700_000_000_000 + seq, seq % 5 === 0 ? 'reject' : 'pass', seq % 5 === 0 ? 1 : 0, seq / 100,
        'default', '1.0.0', 'cpu', 0.1, 4, 5, seq % 2 ? 0.8 : null, seq % 2 ? 'acked' : 'pending', `img/${seq}.png`,
        seq % 5 === 0 ? `images/old-run/reject/${seq}.png` : null, null);
    }
    old.prepare(`INSERT INTO pending_updates (run_id, seq, mask, plc_write_ms, plc_status, image_path, anomaly_map_path)
      VALUES ('old-run', 51, 3, 1.5, 'acked', NULL, NULL)`).run();
    old.prepare(`INSERT INTO shadow_results VALUES ('old-run', 5, 'cand', '2.0.0', 0.4, 'pass', 'default', '1.0.0', 0.05, 'reject', 0, 3, 1)`).run();
    const before = old.prepare('SELECT * FROM results ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(old.pragma('user_version', { simple: true })).toBe(2);
    old.close();

    const store = await ResultStore.open({ dbPath, logger: log });
    // the parked PLC fact from before the upgrade still lands on its row when the row comes
    store.add({ runId: 'old-run', seq: 51, capturedAtMs: 1_700_000_000_051, verdict: 'reject', code: 1, score: 0.9,
      modelName: 'default', modelVersion: '1.0.0', provider: 'cpu', timings: { dispatchMs: 0.1, inferenceMs: 4, frameToVerdictMs: 5, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: null, imagePath: null, anomalyMapPath: null, defectClass: 'scratch' });
    // a writer that predates the field (no defectClass) stores NULL
    store.add({ runId: 'old-run', seq: 52, capturedAtMs: 1_700_000_000_052, verdict: 'pass', code: 0, score: 0.1,
      modelName: 'default', modelVersion: '1.0.0', provider: 'cpu', timings: { dispatchMs: 0.1, inferenceMs: 4, frameToVerdictMs: 5, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: null, imagePath: null, anomalyMapPath: null });
    expect(await store.count()).toBe(52);
    await store.close();

    const ro = openReadOnly(dbPath);
    try {
      expect(ro.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length); // v3, and the migrations after it
      const after = ro.prepare('SELECT * FROM results ORDER BY id').all() as ResultRow[];
      expect(after).toHaveLength(52);
      // every old row is unchanged, column for column, and has no class
      // (v4's line-truth columns, NULL too: test/part-rows.test.ts)
      const v4 = { line_epoch: null, part_id: null, reason: null, gate_outcome: null, gate_outcome_at_ms: null };
      for (let i = 0; i < before.length; i++) expect(after[i]).toEqual({ ...before[i], defect_class: null, ...v4 });
      expect(after[50]).toMatchObject({ seq: 51, defect_class: 'scratch', plc_status: 'acked', plc_write_ms: 1.5 });
      expect(after[51]).toMatchObject({ seq: 52, defect_class: null });
      expect(ro.prepare('SELECT count(*) FROM shadow_results').pluck().get()).toBe(1);
      expect(ro.prepare('SELECT count(*) FROM pending_updates').pluck().get()).toBe(0);
      expect(ro.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'results_defect_class'").pluck().get()).toBe(1);
    } finally { ro.close(); }

    // a second open of the migrated file changes nothing
    const again = await ResultStore.open({ dbPath, logger: log });
    expect(await again.count()).toBe(52);
    await again.close();
  }, 60_000);
});

// ------------------------------------------------------------------------------------------- on the line

const metricsFor = (): StationMetrics => new StationMetrics(() => ({ camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 },
  plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } }), { station: 't' });

/** each run is its own line epoch: runs sharing a store never number the same part */
let epochs = 0;
async function runLoop(runner: ModelRunner, store: ResultStore, runId: string, frames: Array<{ data: Uint8Array; w: number; h: number }>): Promise<void> {
  const epoch = ++epochs;
  const plc = { writeResult: async () => 1 };
  const images = { offer: () => null };
  const loop = new PartLoop(runner, plc, store, images, metricsFor(), new Alarms(log, () => undefined),
    { runId, budgetMs: 10_000, saveImages: 'none', passSampleEvery: 1, doubtMargin: 0, identity: lineIdentity(epoch) });
  async function* source(): AsyncGenerator<Frame> {
    let seq = 0;
    for (const f of frames) { seq++; yield { seq, partId: seq, lineEpoch: epoch, capturedNs: process.hrtime.bigint(), width: f.w, height: f.h, format: 'GRAY8', data: f.data }; }
  }
  await loop.run(source());
  await loop.drain();
}

describe('the part loop stores the verdict\'s defect class', () => {
  let dbPath: string;
  beforeAll(() => { dbPath = join(work, 'line.sqlite'); });

  it('multi-class package: the worst class of each reject; passes have none', async () => {
    const runner = await ModelRunner.create({ packageDir: writeSegmentationPackage(join(work, 'seg')), frame: { width: CLASS_FRAME, height: CLASS_FRAME },
      providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    const store = await ResultStore.open({ dbPath, logger: log });
    try {
      expect(runner.classRule).not.toBeNull();
      const S = CLASS_FRAME;
      // pass; dark cell; bright cell; dark (0 → σ(4)) beats a weaker bright (208 → ~σ(1.2)); pass
      const frames = [classFrame(), classFrame({ 9: 0 }), classFrame({ 0: 255 }), classFrame({ 5: 0, 6: 208 }), classFrame({ 3: 140 })]
        .map((data) => ({ data, w: S, h: S }));
      await runLoop(runner, store, 'seg-run', frames);
      const rows = await store.query({ runId: 'seg-run', limit: 10 });
      expect(rows.map((r) => [r.seq, r.verdict, r.defect_class])).toEqual([
        [1, 'pass', null], [2, 'reject', 'dark'], [3, 'reject', 'bright'], [4, 'reject', 'dark'], [5, 'pass', null]]);
    } finally { await store.close(); await runner.close(); }
  }, 60_000);

  it('one-class package: DEFECT rejects carry its single class, passes none', async () => {
    const gt = (await import('../test-images/test/ground-truth.json', { with: { type: 'json' } })).default as { images: Array<{ file: string; label: string }> };
    const good = gt.images.filter((i) => i.label === 'good').slice(0, 3);
    const bad = gt.images.filter((i) => i.label === 'defect').slice(0, 3);
    const frames = [];
    for (const i of [good[0]!, bad[0]!, good[1]!, bad[1]!, good[2]!, bad[2]!]) {
      const g = await readGray(join('test-images/test', i.file));
      frames.push({ data: g.data, w: g.width, h: g.height });
    }
    const runner = await ModelRunner.create({ packageDir: 'models/default/1.0.0', frame: { width: frames[0]!.w, height: frames[0]!.h },
      providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log });
    const store = await ResultStore.open({ dbPath, logger: log });
    try {
      expect(runner.classRule).toBeNull();
      expect(runner.manifest.outputs.defectClasses).toEqual(['defect']);
      await runLoop(runner, store, 'default-run', frames);
      const rows = await store.query({ runId: 'default-run', limit: 10 });
      expect(rows).toHaveLength(6);
      expect(rows.filter((r) => r.verdict === 'reject').length).toBeGreaterThan(0);
      expect(rows.filter((r) => r.verdict === 'pass').length).toBeGreaterThan(0);
      for (const r of rows) expect([r.seq, r.code, r.defect_class]).toEqual([r.seq, r.code, r.code === 1 ? 'defect' : null]);
    } finally { await store.close(); await runner.close(); }
  }, 120_000);

  it('the parts API shows the model\'s class (list and detail); ?class= matches the model\'s or the label\'s class', async () => {
    const app = await buildApp({
      view: { health: async () => { throw new Error('no station'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) },
      logger: false, reviewDbPath: join(work, 'review.sqlite'), resultsDbPath: dbPath, imagesDir: join(work, 'var'), doubtMargin: 0.1,
      model: { name: 'multi-seg', version: '1.0.0', threshold: 0.5, outputs: { kind: 'segmentation', defectClasses: ['bright', 'dark'] } },
      stationClasses: [], uiDir: join(work, 'no-ui'),
    });
    try {
      const a = await app.review.accounts.create('qa1', 'qa1-password', 'qa');
      const headers = { authorization: `Bearer ${app.review.accounts.createToken(a.id, 'test').token}` };
      const get = (url: string) => app.inject({ method: 'GET', url, headers });
      const seg = (body: { items: Array<{ runId: string; seq: number; model: { defectClass: string | null } }> }) =>
        body.items.filter((p) => p.runId === 'seg-run').map((p) => [p.seq, p.model.defectClass]);

      const list = await get('/api/parts?verdict=reject');
      expect(list.statusCode).toBe(200);
      expect(seg(list.json())).toEqual([[4, 'dark'], [3, 'bright'], [2, 'dark']]);
      const detail = await get('/api/parts/seg-run/3');
      expect(detail.json()).toMatchObject({ seq: 3, verdict: 'reject', model: { name: 'multi-seg', version: '1.0.0', defectClass: 'bright' }, label: null });
      expect((await get('/api/parts/seg-run/1')).json().model.defectClass).toBeNull();

      // QA says part 3 (model: bright) is really dark: both classes stay, each in its place
      const put = await app.inject({ method: 'PUT', url: '/api/parts/seg-run/3/label', headers,
        payload: { verdict: 'true_defect', defectClass: 'dark', regions: [], revision: 0 } });
      expect(put.statusCode).toBe(200);
      const labelled = (await get('/api/parts/seg-run/3')).json();
      expect([labelled.model.defectClass, labelled.label.defectClass]).toEqual(['bright', 'dark']);

      expect(seg((await get('/api/parts?class=dark')).json())).toEqual([[4, 'dark'], [3, 'bright'], [2, 'dark']]);
      expect(seg((await get('/api/parts?class=bright')).json())).toEqual([[3, 'bright']]);
      const defect = (await get('/api/parts?class=defect')).json() as { items: Array<{ runId: string; model: { defectClass: string } }> };
      expect(defect.items.length).toBeGreaterThan(0);
      expect(defect.items.every((p) => p.runId === 'default-run' && p.model.defectClass === 'defect')).toBe(true);
    } finally { await app.close(); }
  }, 60_000);
});
