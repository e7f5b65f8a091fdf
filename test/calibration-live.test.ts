/**
 * The lens calibration on a running station (the PLC simulator's line clock triggers the GStreamer
 * replay camera, ORT workers, OPC UA to the PLC simulator, SQLite, the HTTP server worker):
 *  - a promoted model is built from the station's current state, so it scores undistorted frames
 *    exactly as a runner created with the lens directly does (every stored score is compared);
 *  - calibrations saved / activated through the API are put in force without a restart: health and
 *    metrics name the version, a new lens re-loads the live and the shadow model between two parts;
 *  - no part is lost on the way: one row per part the line numbered, and the PLC did what the
 *    station said for every inspected part.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { expectEveryPartJudgedOnce, versionRuns } from './helpers/parts-accounted.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { CalibrationStore, type LensSection } from '../calibration/calibration-file.js';
import type { ShadowTap } from '../inspector/registry/shadow-tap.js';
import { createUiUser } from './helpers/ui-station.js';
import { openReviewDb, reviewDbPathFor } from '../inspector/review/review-db.js';
import { ExportRegistry } from '../inspector/export/export-registry.js';
import { GraphBuilder, attr, createModel, encodeModel } from '../inspector/inference/onnx-graph.js';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { until } from './helpers/wait.js';
import { lineOptions, stopLineAndCapture, triggeredCamera } from './helpers/line.js';

const log = logger.child({ test: 'calibration-live' });
const work = mkdtempSync(join(tmpdir(), 'inspector-calib-live-'));
const root = join(work, 'models');
const calDir = join(work, 'calibration');
type Dist = [number, number, number, number, number];
const camera = (dist: Dist) => ({ fx: 1500, fy: 1500, cx: 640, cy: 512, dist });
const LENS_A: Dist = [-0.3, 0.1, 0, 0, 0];
const LENS_B: Dist = [0.25, -0.05, 0, 0, 0];
const lens = (dist: Dist): LensSection => ({ camera: camera(dist), imageSize: { width: 1280, height: 1024 },
  board: { cols: 9, rows: 6, squareMm: 5 }, rms: 0.2, views: 12, distinctViews: 12 });

function makeVersion(version: string, threshold?: number): void {
  const dir = join(root, 'default', version);
  cpSync('models/default/1.0.0', dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.version = version;
  if (threshold !== undefined) m.decision.threshold = threshold;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** A package with another map size than the default's 40x32: input 320x256 (area /4), map 80x64 (AveragePool 4). */
function makeBigMapVersion(version: string): void {
  const g = new GraphBuilder('bigmap');
  g.input('image', 'float32', [1, 1, 256, 320]);
  const x = g.op('AveragePool', ['image'], { kernel_shape: attr.ints([4, 4]), strides: attr.ints([4, 4]) });
  g.node('Sigmoid', [x], ['anomaly_map']);
  g.node('ReduceMax', ['anomaly_map'], ['score'], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
  g.output('score', 'float32', [1]);
  g.output('anomaly_map', 'float32', [1, 1, 64, 80]);
  const model = encodeModel(createModel(g.build()));
  const dir = join(root, 'default', version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), model);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({
    schemaVersion: 2, name: 'default', version,
    input: { name: 'image', shape: [1, 1, 256, 320], dtype: 'float32', layout: 'NCHW', colour: 'gray', resize: 'area',
      normalisation: { scale: 1 / 255, mean: [0.5], std: [0.25] } },
    outputs: { kind: 'anomaly_map', score: { name: 'score', shape: [1] }, map: { name: 'anomaly_map', shape: [1, 1, 64, 80] },
      classes: ['good', 'defect'], defectClasses: ['defect'] },
    decision: { threshold: 0.5, minDefectAreaPx: 0 },
    training: { data: 'none (test/calibration-live.test.ts)', script: 'test/calibration-live.test.ts', command: 'vitest' },
    sha256: createHash('sha256').update(model).digest('hex'),
  }, null, 2));
}

/** Scores of the replayed files by a runner created directly (not by the station), cached per file. */
async function directScores(version: string, dist: Dist | null, files: string[]): Promise<Map<string, number>> {
  const r = await ModelRunner.create({ packageDir: join(root, 'default', version), frame: { width: 1280, height: 1024 },
    providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log, ...(dist ? { undistort: { camera: camera(dist) } } : {}) });
  const out = new Map<string, number>();
  try {
    for (const f of files) {
      const frame = await sharp(join('test-images/test/parts', f)).toColourspace('b-w').raw().toBuffer();
      out.set(f, (await r.infer(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength))).score);
    }
  } finally { await r.close(); }
  return out;
}

describe('calibration on a running station', () => {
  let sim: PlcSimulator;
  let station: Station;
  let base: string;
  let cookie: string;
  const partsNow = (): number => station.loop.rec.parts;
  const moreParts = async (n: number): Promise<void> => {
    const target = partsNow() + n;
    await until(() => partsNow() >= target, 40_000, `${n} more parts`);
  };
  const api = async (method: string, url: string, body?: object): Promise<{ status: number; json: any }> => {
    const r = await fetch(base + url, { method, headers: { cookie, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: r.status, json: await r.json() };
  };
  /** stored rows of inspected parts (in part order) from index `from` to `to`: source file and score */
  const rowsOf = async (from: number, to = Infinity) => {
    await station.store.flush();
    const rows = (await station.store.query({ runId: station.runId, limit: 100_000 }))
      .filter((r) => r.reason === null).sort((a, b) => a.part_id! - b.part_id!);
    return rows.slice(from, to).map((r) => ({ file: basename(r.source_ref ?? ''), score: r.score as number, version: r.model_version as string }));
  };
  const marks = { promoted: 0, beforeLensB: 0, lensB: 0 };

  beforeAll(async () => {
    makeVersion('1.0.0');
    makeVersion('1.1.0', 0.4);
    makeBigMapVersion('2.0.0');
    const cal = new CalibrationStore(calDir);
    cal.save({ lens: lens(LENS_A) }, { actor: 'test' });   // v1
    cal.save({ lens: lens(LENS_B) }, { actor: 'test' });   // v2
    cal.activate(1);
    // an export a dead station left running (its process is gone): the next start fails it
    const rdb = openReviewDb(reviewDbPathFor(join(work, 'results.sqlite')));
    new ExportRegistry(rdb).start({ id: 'stale-1', format: 'coco', filter: {}, outDir: join(work, 'exports', 'stale-1-coco'), actor: 'qa-ann',
      items: [{ runId: 'old-run', seq: 1, imagePath: 'images/old-run/reject/1.png' }] });
    rdb.close();
    const [plcPort, triggerPort, httpPort] = [await freePort(), await freePort('udp'), await freePort()];
    const folder = 'test-images/test/parts';
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 1500, certificateFolder: join(work, 'pki-plc'), logger,
      line: lineOptions({ rate: 12, triggerPort, folder }) });
    await sim.start();
    station = await Station.start(resolveConfig({
      station: { budgetMs: 100 },
      camera: triggeredCamera({ triggerPort, folder }),
      model: { packageDir: join(root, 'default', '1.0.0'), providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 3 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'rejects' },
      // accuracyMargin 1: the 2.0.0 stand-in (another map size) is no detector; the gate's accuracy check is tested elsewhere
      registry: { root, statePath: join(work, 'registry-state.json'), goldenImages: 8, warmupFrames: 10, latencyBudgetMs: 2000, accuracyMargin: 1 },
      calibration: { dir: calDir, checkIntervalMs: 0 },
      retention: { enabled: false },
      server: { enabled: true, host: '127.0.0.1', port: httpPort, tls: { mode: 'off' } },
    }), logger);
    base = `http://${station.httpAddress!.replace(/^https?:\/\//, '')}`;
    await createUiUser({ work, base, username: 'admin', password: 'admin-password-1', role: 'admin' });
    const login = await fetch(base + '/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin-password-1' }) });
    expect(login.status).toBe(200);
    cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    sim.startLine();
    await until(() => partsNow() >= 10, 30_000, 'the first parts');
  }, 180_000);

  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('start-up failed the export a dead process left running (its parts released)', () => {
    const rdb = openReviewDb(reviewDbPathFor(join(work, 'results.sqlite')));
    try {
      expect(new ExportRegistry(rdb).get('stale-1')).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/) });
      expect(rdb.prepare(`SELECT COUNT(*) FROM export_items WHERE export_id = 'stale-1'`).pluck().get()).toBe(0);
    } finally { rdb.close(); }
  });

  it('starts with the lens calibration in force: health and metrics say which version', async () => {
    expect(station.health().calibration).toEqual({ version: 1, undistort: true });
    const metrics = await station.metrics.text();
    expect(metrics.body).toMatch(/inspector_calibration_version\{undistort="true"[^}]*\} 1\n/);
    const health = await fetch(base + '/health').then((r) => r.json() as Promise<any>);
    expect(health.calibration).toEqual({ version: 1, undistort: true });
  });

  it('a promoted model scores the same undistorted frames as the live one', async () => {
    await station.models.promote({ name: 'default', version: '1.1.0' }, 'ml-bob');
    expect(station.runner.modelVersion).toBe('1.1.0');
    marks.promoted = partsNow();
    await moreParts(12);
    const rows = (await rowsOf(marks.promoted + 1)).filter((r) => r.version === '1.1.0').slice(0, 12);
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const files = rows.map((r) => r.file);
    const withLens = await directScores('1.1.0', LENS_A, files);
    const plain = await directScores('1.1.0', null, files);
    for (const r of rows) expect(r.score, r.file).toBeCloseTo(withLens.get(r.file)!, 5);
    // the check can tell: without the lens, the scores of these parts differ
    expect(Math.max(...rows.map((r) => Math.abs(r.score - plain.get(r.file)!)))).toBeGreaterThan(1e-4);
  }, 180_000);

  it('a calibration saved through the API is in force without a restart (same lens: models untouched)', async () => {
    await station.models.shadow({ name: 'default', version: '1.0.0' }, 'ml-bob');
    const live = station.runner;
    const shadow = (station.loop.shadow as ShadowTap).runner;
    const saved = await api('PUT', '/api/calibration/roi', { x: 64, y: 64, width: 1152, height: 896 });
    expect(saved.status).toBe(200);
    expect(saved.json.version).toBe(3);
    await until(() => station.health().calibration?.version === 3, 20_000, 'calibration v3 in force');
    expect(station.calibration.doc?.roi).toEqual({ x: 64, y: 64, width: 1152, height: 896 });
    expect(station.runner).toBe(live); // the lens did not change: no re-load
    expect((station.loop.shadow as ShadowTap).runner).toBe(shadow);
    await moreParts(5);
  }, 60_000);

  it('a new lens re-loads the live and the shadow model between two parts while parts flow', async () => {
    const live = station.runner;
    const shadow = (station.loop.shadow as ShadowTap).runner;
    marks.beforeLensB = partsNow();
    const r = await api('POST', '/api/calibration/activate', { version: 2 });
    expect(r.status).toBe(200);
    await until(() => station.health().calibration?.version === 2, 60_000, 'calibration v2 in force');
    marks.lensB = partsNow();
    expect(station.runner).not.toBe(live);
    expect(station.runner.modelVersion).toBe('1.1.0');
    expect(station.loop.live).toBe(station.runner);
    const newShadow = (station.loop.shadow as ShadowTap).runner;
    expect(newShadow).not.toBe(shadow);
    expect(newShadow.modelVersion).toBe('1.0.0');
    expect(station.models.state.shadow).toEqual({ name: 'default', version: '1.0.0' });
    expect((await station.metrics.text()).body).toMatch(/inspector_calibration_version\{undistort="true"[^}]*\} 2\n/);
    const health = await fetch(base + '/health').then((x) => x.json() as Promise<any>);
    expect(health.calibration).toEqual({ version: 2, undistort: true });
    await moreParts(12);
    await station.models.unshadow('ml-bob');
    // parts before the activation: lens A; parts after the swap was seen: lens B
    const before = (await rowsOf(marks.promoted + 1, marks.beforeLensB)).slice(-8);
    const after = (await rowsOf(marks.lensB + 1)).slice(0, 10);
    expect(after.length).toBeGreaterThanOrEqual(8);
    const files = [...new Set([...before, ...after].map((x) => x.file))];
    const a = await directScores('1.1.0', LENS_A, files);
    const b = await directScores('1.1.0', LENS_B, files);
    for (const x of before) expect(x.score, x.file).toBeCloseTo(a.get(x.file)!, 5);
    for (const x of after) expect(x.score, x.file).toBeCloseTo(b.get(x.file)!, 5);
    expect(Math.max(...after.map((x) => Math.abs(a.get(x.file)! - b.get(x.file)!)))).toBeGreaterThan(1e-4);
  }, 240_000);

  it('after a swap to a model with a larger map, its maps are written whole (the image slots follow the live model)', async () => {
    expect(station.images.stats.mapsSkipped).toBe(0);
    await station.models.promote({ name: 'default', version: '2.0.0' }, 'ml-bob');
    expect([station.runner.mapWidth, station.runner.mapHeight]).toEqual([80, 64]);
    const from = partsNow();
    await moreParts(10);
    await until(() => station.images.stats.written + station.images.stats.dropped + station.images.stats.failed >= station.images.stats.offered, 20_000, 'images');
    await station.store.flush();
    const rows = (await station.store.query({ runId: station.runId, limit: 100_000 }))
      .filter((r) => r.reason === null).sort((x, y) => x.part_id! - y.part_id!).slice(from)
      .filter((r) => r.model_version === '2.0.0' && r.anomaly_map_path !== null);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows.slice(0, 3)) {
      const meta = await sharp(join(work, r.anomaly_map_path!)).metadata();
      expect([meta.width, meta.height]).toEqual([80, 64]);
    }
    expect(station.images.stats.mapsSkipped).toBe(0);
  }, 120_000);

  it('no part was lost: one row per part the line numbered, and the PLC did what the station said', async () => {
    await stopLineAndCapture(station, sim);
    const { inspected } = await expectEveryPartJudgedOnce(station, sim);
    expect(versionRuns(inspected)).toEqual(['1.0.0', '1.1.0', '2.0.0']);
  }, 60_000);
});
