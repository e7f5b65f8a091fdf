/**
 * Every long-lived worker goes through core/supervised-worker.ts: each one here
 * is killed for real (the capture worker crashes with an uncaught error, the
 * others are terminated as a crash would end them), its host reports the death
 * ('worker-death', counters), the worker is respawned ('worker-ready') and works
 * again: frames flow from the real GStreamer testsrc, an image is written, /health
 * answers on the same address, results are stored exactly once. Tests wait on
 * events; nothing is timed.
 */
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { Frame, ResultRecord } from '../inspector/core/types.js';
import type { WorkerDeathEvent, WorkerReadyEvent } from '../inspector/core/worker-events.js';
import { CaptureHost, RING_SLOTS } from '../inspector/capture/capture-host.js';
import { FrameRing, SLOT_FILLED } from '../inspector/capture/frame-ring.js';
import type { SourceState } from '../inspector/capture/frame-source.js';
import { ImageWriter, type ImageWritten } from '../inspector/results/image-writer.js';
import { ResultStore, type StoreRecord } from '../inspector/results/result-store.js';
import { ServerHost } from '../inspector/server/server-host.js';
import type { HealthReport } from '../inspector/server/station-view.js';

const log = logger.child({ test: 'worker-supervision' }, { level: process.env.INSPECTOR_LOG_LEVEL ?? 'silent' });
const fast = { initialMs: 20, maxMs: 200, factor: 2, jitter: 0 };
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'inspector-supervision-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** The next frame, or a failure if the iterator ended. */
async function nextFrame(it: AsyncIterator<Frame>): Promise<Frame> {
  const r = await it.next();
  if (r.done) throw new Error('the capture iterator ended');
  return r.value;
}

describe('capture worker', () => {
  const W = 160;
  const H = 120;
  const config = { template: 'testsrc' as const, width: W, height: H, rate: 100, logger: log, firstFrameTimeoutMs: 10_000, stallTimeoutMs: 3_000 };

  it('a crashed capture worker is respawned on the same ring: restarting → running, seq continues, the iterator never ends', async () => {
    const ring = FrameRing.allocate(RING_SLOTS, W * H);
    const host = new CaptureHost(config, log, ring, null, { testHooks: true, restartBackoff: fast });
    const states: SourceState[] = [];
    const deaths: WorkerDeathEvent[] = [];
    const readies: WorkerReadyEvent[] = [];
    host.on('state', (s: SourceState) => states.push(s));
    host.on('worker-death', (d: WorkerDeathEvent) => deaths.push(d));
    host.on('worker-ready', (r: WorkerReadyEvent) => readies.push(r));
    try {
      await host.start();
      const it = host[Symbol.asyncIterator]();
      let last = 0;
      for (let i = 0; i < 5; i++) {
        const f = await nextFrame(it);
        expect(f.seq).toBeGreaterThan(last);
        last = f.seq;
        f.release!();
      }
      // a frame the consumer still holds across the death, and a slot the worker "claimed" and never handed over
      const kept = await nextFrame(it);
      const keptCopy = Buffer.from(kept.data);
      const claimed = ring.claim();
      expect(claimed).toBeGreaterThanOrEqual(0);
      const framesBefore = host.stats.frames;

      const died = once(host, 'worker-death');
      const back = once(host, 'worker-ready');
      host.debugKill();
      const [death] = await died as [WorkerDeathEvent];
      expect(death).toMatchObject({ worker: 'capture', generation: 1, deaths: 1, reason: 'exited with code 70' });
      expect(host.state).toBe('restarting');
      const lastOfDead = host.lastSeq; // every frame of the dead worker has a seq up to this
      await back;
      expect(readies).toEqual([{ worker: 'capture', generation: 2, restarts: 1 }]);

      // frames flow again from the new worker, seq carrying on from the old one
      let fresh: Frame | null = null;
      while (!fresh) {
        const f = await nextFrame(it);
        expect(f.seq).toBeGreaterThan(last);
        last = f.seq;
        if (f.seq > lastOfDead) fresh = f; else f.release!(); // the dead worker's last frames are still good
      }
      expect(fresh!.data.length).toBe(W * H);
      fresh!.release!();
      expect(host.state).toBe('running');
      expect(states).toEqual(['running', 'restarting', 'running']);
      expect(host.stats.frames).toBeGreaterThan(framesBefore);
      expect(host.stats.restarts).toBe(1); // the respawn counts as a camera restart
      expect(host.supervision).toMatchObject({ worker: 'capture', deaths: 1, restarts: 1, generation: 2, slotsReclaimed: 1, lastDeathReason: 'exited with code 70' });
      expect(host.supervision.downMs).toBeGreaterThan(0);
      // the held frame was neither freed nor overwritten; the orphaned slot was freed at the death
      expect(Atomics.load(ring.states, kept.slot!)).toBe(SLOT_FILLED);
      expect(Buffer.from(kept.data).equals(keptCopy)).toBe(true);
      kept.release!();
      expect(deaths).toHaveLength(1);

      await host.stop();
      expect(await it.next()).toEqual({ value: undefined, done: true });
      expect(host.state).toBe('stopped');
    } finally {
      await host.stop();
    }
  }, 60_000);

  it('stop() during a respawn ends the iterator and nothing is respawned after it', async () => {
    const host = new CaptureHost(config, log, undefined, null, { testHooks: true, restartBackoff: { ...fast, initialMs: 60_000, maxMs: 60_000 } });
    try {
      await host.start();
      const it = host[Symbol.asyncIterator]();
      (await nextFrame(it)).release!();
      const died = once(host, 'worker-death');
      host.debugKill();
      await died;
      expect(host.supervision.state).toBe('restarting'); // the respawn waits out its backoff
      await host.stop();
      expect(host.supervision).toMatchObject({ state: 'closed', deaths: 1, restarts: 0, generation: 1 });
      expect(host.state).toBe('stopped');
      for (;;) { // frames already handed over may still be read; then the iterator ends
        const r = await it.next();
        if (r.done) break;
        r.value.release!();
      }
    } finally {
      await host.stop();
    }
  }, 60_000);
});

describe('image writer', () => {
  it('a killed image worker fails the jobs it held, is respawned, and writes again; offers never wait', async () => {
    const W = 64;
    const H = 48;
    const frame = (seq: number): Uint8Array => new Uint8Array(W * H).fill(seq);
    const iw = await ImageWriter.create({ dir: join(dir, 'images'), width: W, height: H, slots: 2, logger: log,
      restartBackoffMs: { initial: 20, max: 200 }, testHooks: true });
    const deaths: WorkerDeathEvent[] = [];
    iw.on('worker-death', (d) => deaths.push(d));
    try {
      const first = once(iw, 'written');
      expect(iw.offer({ seq: 1, runId: 'r', verdict: 'reject', frame: frame(1) })).toBe('images/r/reject/1.png');
      await first;

      const back = once(iw, 'worker-ready');
      await iw.debugKill();
      expect(deaths).toEqual([{ worker: 'images', reason: 'exited with code 1', generation: 1, deaths: 1 }]);
      expect(iw.supervision.state).toBe('restarting');
      // while it is down: a free slot takes the frame (written by the new worker), a full pool drops and counts
      expect(iw.offer({ seq: 2, runId: 'r', verdict: 'reject', frame: frame(2) })).toBe('images/r/reject/2.png');
      expect(iw.offer({ seq: 3, runId: 'r', verdict: 'pass', frame: frame(3) })).toBe('images/r/pass/3.png');
      expect(iw.offer({ seq: 4, runId: 'r', verdict: 'pass', frame: frame(4) })).toBeNull();
      expect(iw.stats.dropped).toBe(1);
      const written: number[] = [];
      iw.on('written', (w: ImageWritten) => written.push(w.seq));
      expect(await back).toEqual([{ worker: 'images', generation: 2, restarts: 1 }]);
      await iw.drain();
      expect(written.sort()).toEqual([2, 3]);
      expect(existsSync(join(dir, 'images', 'images/r/reject/2.png'))).toBe(true);
      // and a new offer after the respawn
      const fifth = once(iw, 'written');
      expect(iw.offer({ seq: 5, runId: 'r', verdict: 'reject', frame: frame(5) })).not.toBeNull();
      expect((await fifth)[0]).toMatchObject({ seq: 5, imagePath: 'images/r/reject/5.png' });
      expect(iw.stats).toMatchObject({ offered: 5, written: 4, dropped: 1, failed: 0, inFlight: 0, restarts: 1 });
      expect(iw.supervision).toMatchObject({ deaths: 1, restarts: 1, generation: 2, state: 'ready' });
    } finally {
      await iw.close();
    }
  }, 60_000);
});

describe('server worker', () => {
  it('a killed server worker is respawned on the same port; the RPC handlers (added ones too) answer it', async () => {
    const health: HealthReport = {
      status: 'up', station: 'supervised', uptimeS: 1, parts: 0,
      camera: { state: 'up', detail: 'testsrc: running', frames: 0, dropped: 0, restarts: 0, errors: 0 },
      model: { state: 'up', name: 'm', version: '1.0.0', provider: 'cpu', fallbacks: [] },
      plc: { state: 'up', detail: 'connected', endpoint: 'opc.tcp://x', writes: 0, writeErrors: 0, reconnects: 0 },
      alarms: [],
    };
    const host = await ServerHost.start({ host: '127.0.0.1', port: 0, app: { uiDir: join(dir, 'no-ui') } }, {
      health: async () => health,
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'inspector_up 1\n' }),
    }, log, { testHooks: true, restartBackoff: fast });
    try {
      const base = host.address;
      expect(((await (await fetch(`${base}/health`)).json()) as { station: string }).station).toBe('supervised');
      host.handle('metrics', async () => ({ contentType: 'text/plain; version=0.0.4', body: 'inspector_up 2\n' }));

      const died = once(host, 'worker-death');
      const back = once(host, 'worker-ready');
      await host.debugKill();
      expect((await died)[0]).toMatchObject({ worker: 'server', generation: 1, deaths: 1 });
      expect((await back)[0]).toEqual({ worker: 'server', generation: 2, restarts: 1 });
      expect(host.address).toBe(base);
      const h = await fetch(`${base}/health`);
      expect(h.status).toBe(200);
      expect(((await h.json()) as { station: string }).station).toBe('supervised');
      expect(await (await fetch(`${base}/metrics`)).text()).toBe('inspector_up 2\n');
      expect(host.supervision).toMatchObject({ worker: 'server', deaths: 1, restarts: 1, generation: 2, state: 'ready' });
    } finally {
      await host.close();
    }
  }, 120_000); // two server starts: each loads the whole app in a fresh thread (seconds on a busy 2-core box)
});

describe('store worker', () => {
  const record = (seq: number): StoreRecord => ({
    runId: 'run-s', seq, capturedAtMs: 1_700_000_000_000 + seq, verdict: 'pass', code: 0, score: 0.1,
    modelName: 'm', modelVersion: '1.0.0', provider: 'cpu',
    timings: { dispatchMs: 0.2, inferenceMs: 4, frameToVerdictMs: 5, plcWriteMs: null },
    plcStatus: 'acked' as ResultRecord['plcStatus'], sourceRef: null, imagePath: null, anomalyMapPath: null,
    lineEpoch: 7, partId: seq,
  });

  it('a killed store worker is respawned and every unconfirmed op is re-sent: each result stored exactly once', async () => {
    const store = await ResultStore.open({ dbPath: join(dir, 'results.sqlite'), logger: log, batchMs: 5, maxBatch: 10,
      restartBackoffMs: { initial: 20, max: 200 }, testHooks: { kill: true } });
    try {
      for (let seq = 1; seq <= 30; seq++) store.add(record(seq));
      await store.flush();
      for (let seq = 31; seq <= 60; seq++) store.add(record(seq));
      void store.flush(); // posted: the worker may commit some of these before it dies, unconfirmed
      const back = once(store, 'worker-ready');
      const died = once(store, 'worker-death');
      await store.debugKill();
      expect((await died)[0]).toMatchObject({ worker: 'store', generation: 1, deaths: 1 });
      expect(store.stats.workerUp).toBe(false);
      for (let seq = 61; seq <= 80; seq++) store.add(record(seq)); // while it is down: kept
      store.update(70, 'run-s', { imagePath: 'images/70.png' });
      expect((await back)[0]).toEqual({ worker: 'store', generation: 2, restarts: 1 });
      await store.flush();
      expect(await store.count('run-s')).toBe(80);
      const books = await store.partAccounting('run-s');
      expect([books.rows, books.duplicates]).toEqual([80, 0]);
      expect((await store.part(7, 70))?.image_path).toBe('images/70.png');
      // every op is confirmed exactly once: inserted by a worker that said so, or committed by the dead worker
      // without confirmation and so re-sent, then confirmed as a duplicate (how many depends on when it died).
      // 1-30 were confirmed before the kill and 61-80 were added after it: those are inserted for certain.
      expect(store.stats.inserted + store.stats.duplicates).toBe(80);
      expect(store.stats.inserted).toBeGreaterThanOrEqual(50);
      expect(store.stats.backlog).toBe(0);
      expect(store.supervision).toMatchObject({ worker: 'store', deaths: 1, restarts: 1, generation: 2, state: 'ready' });
    } finally {
      await store.close();
    }
  }, 60_000);
});
