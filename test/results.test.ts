/**
 * Result store (SQLite WAL, in a worker) and image writer (sharp, in a worker):
 * real SQLite files in a temp dir, real PNG encoding.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { ResultRecord } from '../inspector/core/types.js';
import { ResultStore, openReadOnly, type ResultRow, type StoreRecord } from '../inspector/results/result-store.js';
import { ImageWriter, type ImageWritten } from '../inspector/results/image-writer.js';

const log = logger.child({ test: 'results' });
let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'inspector-results-')); });
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

function record(runId: string, seq: number): StoreRecord {
  const reject = seq % 7 === 0;
  return {
    runId, seq, capturedAtMs: 1_700_000_000_000 + seq, verdict: reject ? 'reject' : 'pass', code: reject ? 1 : 0,
    score: seq / 10_000, modelName: 'padim', modelVersion: '1.2.0', provider: 'cpu',
    timings: { dispatchMs: 0.25, inferenceMs: 4 + (seq % 5), frameToVerdictMs: 5 + (seq % 5), plcWriteMs: null },
    plcStatus: 'skipped' as ResultRecord['plcStatus'], sourceRef: seq % 2 ? `img/${seq}.png` : null,
    imagePath: null, anomalyMapPath: null,
  };
}

function expectRow(row: ResultRow, runId: string): void {
  const r = record(runId, row.seq);
  expect(row).toMatchObject({
    run_id: runId, captured_at_ms: r.capturedAtMs, verdict: r.verdict, code: r.code, score: r.score,
    model_name: 'padim', model_version: '1.2.0', provider: 'cpu', dispatch_ms: 0.25,
    inference_ms: r.timings.inferenceMs, frame_to_verdict_ms: r.timings.frameToVerdictMs, source_ref: r.sourceRef,
  });
}

const openStore = (name: string, extra: Partial<Parameters<typeof ResultStore.open>[0]> = {}): Promise<ResultStore> =>
  ResultStore.open({ dbPath: join(work, name), logger: log, ...extra });

describe('ResultStore', () => {
  it('stores a burst of 1000 records exactly once; late facts land on the right rows', async () => {
    const store = await openStore('burst.sqlite');
    store.startRun('run-a', { station: 'test', threshold: 0.5 });
    const N = 1000;
    const t0 = performance.now();
    for (let seq = 1; seq <= N; seq++) {
      store.add(record('run-a', seq));
      if (seq % 2 === 0) store.update(seq, 'run-a', { plcWriteMs: seq / 100, plcStatus: 'acked' }); // before any flush
    }
    const addUs = ((performance.now() - t0) * 1000) / (N + N / 2);
    // image facts come separately, later, and must not erase the PLC facts (and vice versa)
    for (let seq = 3; seq <= N; seq += 3) store.update(seq, 'run-a', { imagePath: `images/${seq}.png`, anomalyMapPath: `images/${seq}.map.png` });
    // facts for parts whose record is not added yet (PLC ack before add): parked, applied on insert
    for (let seq = N + 1; seq <= N + 10; seq++) store.update(seq, 'run-a', { plcWriteMs: 7, plcStatus: 'failed' });
    await store.flush();
    for (let seq = N + 1; seq <= N + 10; seq++) store.add(record('run-a', seq));
    await store.flush();

    expect(await store.count('run-a')).toBe(N + 10);
    expect(await store.count('other')).toBe(0);
    const rows = await store.query({ runId: 'run-a', limit: 5000 });
    expect(rows.length).toBe(N + 10);
    expect(new Set(rows.map((r) => r.seq)).size).toBe(N + 10);
    for (const row of rows) {
      expectRow(row, 'run-a');
      const seq = row.seq;
      if (seq > N) expect([row.plc_write_ms, row.plc_status]).toEqual([7, 'failed']);
      else if (seq % 2 === 0) expect([row.plc_write_ms, row.plc_status]).toEqual([seq / 100, 'acked']);
      else expect([row.plc_write_ms, row.plc_status]).toEqual([null, 'skipped']);
      const img = seq <= N && seq % 3 === 0;
      expect(row.image_path).toBe(img ? `images/${seq}.png` : null);
      expect(row.anomaly_map_path).toBe(img ? `images/${seq}.map.png` : null);
    }
    const rejects = await store.query({ runId: 'run-a', verdict: 'reject', limit: 5000 });
    expect(rejects.length).toBe(Math.floor((N + 10) / 7));
    expect(store.stats).toMatchObject({ inserted: N + 10, duplicates: 0, deferred: 10, quarantined: 0, backlog: 0 });
    await store.close();

    const ro = openReadOnly(join(work, 'burst.sqlite'));
    expect(ro.prepare('SELECT config_json FROM runs WHERE run_id = ?').pluck().get('run-a')).toBe('{"station":"test","threshold":0.5}');
    expect(ro.pragma('user_version', { simple: true })).toBe(4); // 1: results, runs, pending updates; 2: shadow results; 3: defect_class; 4: line truth
    expect(ro.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'shadow_results'").pluck().get()).toBe(1);
    expect(ro.prepare('SELECT count(*) FROM pending_updates').pluck().get()).toBe(0);
    ro.close();

    // main-thread cost of add(), steady state (copy into a row tuple + push)
    const s2 = await openStore('cost.sqlite');
    const M = 20_000;
    const recs = Array.from({ length: M }, (_, i) => record('run-c', i + 1));
    const t1 = performance.now();
    for (const r of recs) s2.add(r);
    const addUs2 = ((performance.now() - t1) * 1000) / M;
    const t2 = performance.now();
    await s2.close();
    console.log(`[measure] add()/update() main-thread cost: ${addUs.toFixed(2)} µs/call (burst of 1000, cold); `
      + `add(): ${addUs2.toFixed(2)} µs/call over ${M}; store worker committed ${M} rows in ${(performance.now() - t2).toFixed(0)} ms`);
  });

  it('runs in WAL mode; a read-only connection reads while the worker writes', async () => {
    const dbPath = join(work, 'wal.sqlite');
    const store = await openStore('wal.sqlite');
    for (let seq = 1; seq <= 100; seq++) store.add(record('run-w', seq));
    await store.flush();
    const ro = openReadOnly(dbPath);
    expect(ro.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(() => ro.exec("INSERT INTO runs VALUES ('x', 0, '{}')")).toThrow(/readonly/i);
    const count = ro.prepare('SELECT count(*) FROM results').pluck();
    // a reader holding a snapshot does not block the writer (rollback journal would)
    ro.exec('BEGIN');
    expect(count.get()).toBe(100);
    for (let seq = 101; seq <= 300; seq++) store.add(record('run-w', seq));
    const t0 = performance.now();
    await store.flush();
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(count.get()).toBe(100); // still its snapshot
    ro.exec('COMMIT');
    expect(count.get()).toBe(300);
    // and reads interleaved with a stream of writes always see a committed, growing count
    let last = 300;
    for (let i = 0; i < 20; i++) {
      for (let k = 0; k < 20; k++) store.add(record('run-w', 301 + i * 20 + k));
      await sleep(3);
      const n = count.get() as number;
      expect(n).toBeGreaterThanOrEqual(last);
      last = n;
    }
    await store.flush();
    expect(count.get()).toBe(700);
    ro.close();
    await store.close();
  });

  it('loses and duplicates nothing when the worker is killed mid-stream', async () => {
    const store = await openStore('kill.sqlite', { batchMs: 5, maxBatch: 64, restartBackoffMs: { initial: 20, max: 200 } });
    const N = 3000;
    const kills = new Set([500, 1500, 2400]);
    for (let seq = 1; seq <= N; seq++) {
      store.add(record('run-k', seq));
      store.update(seq, 'run-k', { plcWriteMs: seq / 10, plcStatus: 'acked' });
      if (seq % 30 === 0) await sleep(1);
      if (kills.has(seq)) {
        while (!store.stats.workerUp) await sleep(5); // kill a live worker each time
        void store.flush(); // posts a batch that the worker may or may not commit before it dies
        await store._terminateWorkerForTest();
      }
    }
    await store.flush();
    expect(store.stats.restarts).toBe(3);
    expect(await store.count('run-k')).toBe(N);
    const rows = await store.query({ runId: 'run-k', limit: N + 10 });
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    for (const row of rows) {
      expectRow(row, 'run-k');
      expect([row.plc_write_ms, row.plc_status]).toEqual([row.seq / 10, 'acked']);
    }
    expect(store.stats.backlog).toBe(0);
    await store.close();
  });

  it('a batch committed but never acknowledged is replayed without duplicates', async () => {
    const store = await openStore('ack.sqlite', { maxBatch: 10, testHooks: { dieAfterCommitOfBatch: 2 } });
    for (let seq = 1; seq <= 40; seq++) store.add(record('run-x', seq));
    store.update(15, 'run-x', { imagePath: 'images/15.png' }); // in batch 5 after replays
    await store.flush();
    expect(store.stats.restarts).toBe(1);
    expect(store.stats.duplicates).toBe(10); // batch 2, replayed, inserted nothing
    expect(await store.count('run-x')).toBe(40);
    const [row] = await store.query({ runId: 'run-x', limit: 1, offset: 14 });
    expect(row?.image_path).toBe('images/15.png');
    await store.close();
  });
});

// ---------------------------------------------------------------- images --

/** A deterministic GRAY8 test frame: gradient, rings and a little noise. */
function frame(seq: number, w: number, h: number): Buffer {
  const b = Buffer.alloc(w * h);
  let s = seq * 2654435761 >>> 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      const ring = ((x - w / 2) ** 2 + (y - h / 2) ** 2) % 4096 < 200 ? 60 : 0;
      b[y * w + x] = (((x + y + seq) >> 3) + ring + (s >>> 29)) & 255;
    }
  }
  return b;
}

function anomalyMap(w: number, h: number): Float32Array {
  const m = new Float32Array(w * h);
  for (let i = 0; i < m.length; i++) m[i] = 0.1 + (i % w) / w;
  return m;
}

describe('ImageWriter', () => {
  it('bounded slots: drops are counted, PNGs decode to the exact pixels, maps are written', async () => {
    const W = 320; const H = 240; const MW = 40; const MH = 30;
    const dir = join(work, 'img-a');
    const iw = await ImageWriter.create({ dir, width: W, height: H, slotBytes: W * H, slots: 2, mapBytes: MW * MH * 4, logger: log, format: 'png' });
    const written: ImageWritten[] = [];
    iw.on('written', (w) => written.push(w));
    const offeredPaths = new Map<number, string>();
    for (let seq = 1; seq <= 50; seq++) {
      const p = iw.offer({ seq, runId: 'run/i', verdict: seq % 3 ? 'pass' : 'reject', frame: frame(seq, W, H), map: { data: anomalyMap(MW, MH), width: MW, height: MH } });
      if (p) offeredPaths.set(seq, p);
      if (seq % 10 === 0) await sleep(15);
    }
    await iw.drain();
    const s = iw.stats;
    expect(s.offered).toBe(50);
    expect(s.offered).toBe(s.written + s.dropped + s.failed);
    expect(s.dropped).toBeGreaterThan(0);
    expect(s.written).toBeGreaterThanOrEqual(2);
    expect(s.inFlight).toBe(0);
    expect(written.length).toBe(s.written);
    for (const w of written) {
      expect(w.imagePath).toBe(offeredPaths.get(w.seq));
      expect(w.imagePath).toBe(`images/run_i/${w.seq % 3 ? 'pass' : 'reject'}/${w.seq}.png`);
      const meta = await sharp(join(dir, w.imagePath)).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels, meta.space]).toEqual(['png', W, H, 1, 'b-w']);
      // sharp decodes to sRGB unless told otherwise
      const { data, info } = await sharp(join(dir, w.imagePath)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([W, H, 1]);
      expect(data.equals(frame(w.seq, W, H))).toBe(true);
      expect(w.anomalyMapPath).toBe(`images/run_i/${w.seq % 3 ? 'pass' : 'reject'}/${w.seq}.map.png`);
      expect((await sharp(join(dir, w.anomalyMapPath!)).metadata()).channels).toBe(1);
      const m = await sharp(join(dir, w.anomalyMapPath!)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
      expect([m.info.width, m.info.height, m.info.channels]).toEqual([MW, MH, 1]);
      expect(Math.min(...m.data)).toBe(0);
      expect(Math.max(...m.data)).toBe(255);
    }
    await iw.close();
  });

  it('map slots follow the live model: a larger map after a swap is written whole, jobs before the swap keep theirs', async () => {
    const W = 64; const H = 48;
    const dir = join(work, 'img-maps');
    const pattern = (w: number, h: number, k: number): Float32Array => Float32Array.from({ length: w * h }, (_, i) => ((i * k) % 251) / 250);
    const as8 = (m: Float32Array): Buffer => Buffer.from(Array.from(m, (v) => Math.round(v * 255)));
    // slots sized for the start-up model's 8x6 map; fixed scale so each PNG value is round(v * 255)
    const iw = await ImageWriter.create({ dir, width: W, height: H, slots: 4, mapBytes: 8 * 6 * 4, mapRange: [0, 1], logger: log,
      restartBackoffMs: { initial: 50, max: 50 } });
    const written = new Map<number, ImageWritten>();
    iw.on('written', (w) => written.set(w.seq, w));
    const maps = new Map<number, { w: number; h: number; data: Float32Array }>();
    const offer = (seq: number, w: number, h: number): string | null => {
      const data = pattern(w, h, seq + 3);
      maps.set(seq, { w, h, data });
      return iw.offer({ seq, runId: 'swap', verdict: 'reject', frame: frame(seq, W, H), map: { data, width: w, height: h } });
    };
    try {
      expect(offer(1, 8, 6)).not.toBeNull();
      expect(offer(2, 32, 24)).not.toBeNull();      // the new model's map before the slots grew: skipped (counted)
      expect(iw.stats.mapsSkipped).toBe(1);
      expect(iw.fitMaps(32 * 24)).toBe(true);         // the swap: job 1 (already posted) keeps its map
      expect(iw.fitMaps(8 * 6)).toBe(false);          // slots never shrink; each write records its own size
      expect(iw.mapSlotBytes).toBe(32 * 24 * 4);
      expect(offer(3, 32, 24)).not.toBeNull();
      expect(offer(4, 8, 6)).not.toBeNull();
      await iw.drain();
      // a job filled while the worker is down is posted after the restart: its map moves to the new slots
      await iw._terminateWorkerForTest();
      for (let i = 0; i < 100 && iw.stats.restarts === 0; i++) await sleep(10);
      expect(iw.stats.restarts).toBe(1);
      expect(offer(5, 32, 24)).not.toBeNull();
      expect(iw.fitMaps(40 * 30)).toBe(true);
      expect(offer(6, 40, 30)).not.toBeNull();
      for (let i = 0; i < 300 && written.size < 6; i++) await sleep(10);
      await iw.drain();
      expect([...written.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(written.get(2)!.anomalyMapPath).toBeNull();
      for (const seq of [1, 3, 4, 5, 6]) {
        const m = maps.get(seq)!;
        const png = await sharp(join(dir, written.get(seq)!.anomalyMapPath!)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
        expect([png.info.width, png.info.height], `map of ${seq}`).toEqual([m.w, m.h]);
        expect(png.data.equals(as8(m.data)), `map of ${seq}`).toBe(true);
      }
    } finally { await iw.close(); }
  });

  it('a worker death fails the jobs in flight, frees their slots and restarts', async () => {
    const W = 640; const H = 480;
    const iw = await ImageWriter.create({ dir: join(work, 'img-b'), width: W, height: H, slots: 4, logger: log, restartBackoffMs: { initial: 20, max: 200 } });
    const failed: number[] = [];
    iw.on('failed', (f) => failed.push(f.seq));
    for (let seq = 1; seq <= 4; seq++) expect(iw.offer({ seq, runId: 'r', verdict: 'reject', frame: frame(seq, W, H) })).not.toBeNull();
    await iw._terminateWorkerForTest();
    expect(iw.stats.restarts).toBe(1);
    expect(iw.stats.inFlight).toBe(0);
    expect(iw.stats.written + iw.stats.failed).toBe(4);
    expect(failed.length).toBe(iw.stats.failed);
    // offered while the worker is down: kept in its slot, written by the new worker
    expect(iw.offer({ seq: 5, runId: 'r', verdict: 'reject', frame: frame(5, W, H) })).toBe('images/r/reject/5.png');
    await iw.drain();
    expect(existsSync(join(work, 'img-b', 'images/r/reject/5.png'))).toBe(true);
    expect(iw.stats.offered).toBe(iw.stats.written + iw.stats.dropped + iw.stats.failed);
    await iw.close();
  });

  it('encodes at low priority: the worker and its libvips threads at nice 19, the main thread untouched', async () => {
    const W = 1280; const H = 1024;
    const iw = await ImageWriter.create({ dir: join(work, 'img-c'), width: W, height: H, slots: 8, logger: log, mapBytes: 64 * 64 * 4 });
    const frames = Array.from({ length: 8 }, (_, i) => frame(i + 1, W, H));
    const map = anomalyMap(64, 64);
    let written = 0;
    iw.on('written', () => { written++; });
    for (let i = 0; i < 8; i++) {
      expect(iw.offer({ seq: i + 1, runId: 'prio', verdict: 'pass', frame: frames[i]!, map: { data: map, width: 64, height: 64 } })).not.toBeNull();
    }
    await iw.drain();
    expect(written).toBe(8);
    const { self, threads } = await iw.threadReport();
    await iw.close();
    if (process.platform === 'linux') {
      expect(self).not.toBeNull();
      expect(threads.find((t) => t.tid === self)?.nice).toBe(19);
      expect(threads.find((t) => t.tid === process.pid)?.nice).toBe(0);
      expect(threads.filter((t) => t.comm.startsWith('libvips') && t.nice === 19).length).toBeGreaterThan(0);
    }
  });
});

describe('spawnTsWorker', () => {
  it('starts the TypeScript workers under plain tsx too', () => {
    const here = fileURLToPath(new URL('.', import.meta.url));
    const script = join(work, 'under-tsx.mts');
    const results = pathToFileURL(join(here, '../inspector/results/')).href;
    writeFileSync(script, `
      import { ResultStore } from '${results}result-store.ts';
      import { ImageWriter } from '${results}image-writer.ts';
      import { logger } from '${pathToFileURL(join(here, '../inspector/core/logger.ts')).href}';
      const store = await ResultStore.open({ dbPath: ${JSON.stringify(join(work, 'tsx.sqlite'))}, logger });
      store.add({ runId: 't', seq: 1, capturedAtMs: 1, verdict: 'pass', code: 0, score: 0.1, modelName: 'm', modelVersion: '1',
        provider: 'cpu', timings: { dispatchMs: 1, inferenceMs: 1, frameToVerdictMs: 1, plcWriteMs: null },
        plcStatus: 'acked', sourceRef: null, imagePath: null, anomalyMapPath: null });
      const iw = await ImageWriter.create({ dir: ${JSON.stringify(join(work, 'tsx-img'))}, width: 4, height: 2, logger });
      iw.offer({ seq: 1, runId: 't', verdict: 'pass', frame: new Uint8Array(8) });
      await iw.drain();
      console.log(JSON.stringify({ count: await store.count(), written: iw.stats.written }));
      await iw.close();
      await store.close();
    `);
    const tsx = join(here, '../node_modules/.bin/tsx');
    const out = execFileSync(tsx, [script], { encoding: 'utf8', env: { ...process.env, VITEST: '' }, timeout: 30_000 });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ count: 1, written: 1 });
  });
});
