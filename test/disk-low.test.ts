/**
 * DISK_LOW and retention paced by the write rate (issue 16.1).
 *
 * Before: the budget was checked every 15 minutes and a 20 parts/s demo wrote 13 GB in 36 minutes,
 * so the disk could fill between two checks. Now a DiskPacer (fed by statfs samples) runs a pass as
 * soon as the use projected over the next checks reaches the high-water mark, deletes down to the
 * low-water mark, and raises DISK_LOW at the high-water mark (or under a free-space floor) with
 * hysteresis. The pacer is plain logic driven with explicit clock values here (no timing); the
 * scheduler runs real passes over real files; a real station shows DISK_LOW as degraded health.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { DiskPacer, diskLowDetail, type DiskPacerConfig } from '../inspector/retention/disk-pacer.js';
import { RetentionScheduler } from '../inspector/retention/retention-scheduler.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { Alarm } from '../inspector/station/alarms.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { fillStation } from './helpers/export-fixture.js';
import { until } from './helpers/wait.js';
import { replayItems } from './helpers/line.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const quiet = logger.child({ test: 'disk-low' }, { level: 'warn' });
const cfg: DiskPacerConfig = { budgetBytes: 1000 * MiB, highWaterRatio: 0.9, clearRatio: 0.85, lowWaterRatio: 0.8,
  freeFloorBytes: 1 * GiB, minIntervalMs: 10_000, maxIntervalMs: 900_000, checkIntervalMs: 5000 };

describe('DiskPacer: when to run retention and when the disk is low', () => {
  it('raises DISK_LOW at the high-water mark and clears it only under the clear ratio (hysteresis)', () => {
    const p = new DiskPacer(cfg, 0);
    p.onSample(100 * GiB, 200 * GiB, 0);
    p.onPassDone(800 * MiB, 100 * GiB, 1000);
    expect(p.status(1000).low).toBe(false);
    p.onSample(100 * GiB - 110 * MiB, 200 * GiB, 6000); // the images grew to 910 MiB: over 90 %
    const raised = p.status(6000);
    expect(raised.imagesBytes).toBe(910 * MiB);
    expect(raised).toMatchObject({ low: true, lowReason: 'budget' });
    expect(diskLowDetail(raised)).toMatch(/images use 0\.89 GiB of the 0\.98 GiB budget \(91 %\)/);
    p.onPassDone(870 * MiB, 100 * GiB - 70 * MiB, 7000); // 87 %: under the mark but over the clear ratio
    expect(p.status(7000).low).toBe(true);
    p.onPassDone(800 * MiB, 100 * GiB, 8000); // 80 %: cleared
    expect(p.status(8000)).toMatchObject({ low: false, lowReason: null });
  });

  it('raises DISK_LOW when the file system\'s free space falls under the floor, whatever the budget says', () => {
    const p = new DiskPacer(cfg, 0);
    p.onSample(0.5 * GiB, 200 * GiB, 0);
    expect(p.status(0)).toMatchObject({ low: true, lowReason: 'free-space' });
    p.onSample(1.05 * GiB, 200 * GiB, 5000); // over the floor, not 10 % over it: still low
    expect(p.status(5000).low).toBe(true);
    p.onSample(1.2 * GiB, 200 * GiB, 10_000);
    expect(p.status(10_000).low).toBe(false);
  });

  it('paces passes by the write rate: due before the projected use reaches the mark, never twice within the minimum interval', () => {
    const p = new DiskPacer(cfg, 0);
    p.onSample(100 * GiB, 200 * GiB, 0);
    expect(p.due(5000)).toBe(false); // the minimum interval since start
    expect(p.due(10_000)).toBe(true); // nothing measured yet: measure
    p.onPassStart(10_000);
    p.onPassDone(500 * MiB, 100 * GiB, 11_000);
    // writing 10 MiB/s: 50 % → 90 % takes 40 s; a fixed 15-minute pass would come far too late
    let free = 100 * GiB;
    let t = 11_000;
    let dueAt: number | null = null;
    while (t < 120_000 && dueAt === null) {
      t += 5000;
      free -= 50 * MiB;
      p.onSample(free, 200 * GiB, t);
      if (p.due(t)) dueAt = t;
    }
    expect(dueAt).not.toBeNull();
    const use = p.status(dueAt!).imagesBytes!;
    expect(use).toBeLessThan(p.highWaterBytes); // before the mark, not after
    const rate = p.status(dueAt!).writeBytesPerSec; // smoothed: it approaches the 10 MiB/s from below
    expect(rate).toBeGreaterThan(8 * MiB);
    expect(rate).toBeLessThanOrEqual(10 * MiB);
    expect(p.status(dueAt!).low).toBe(false);
    p.onPassStart(dueAt!);
    p.onSample(free - 50 * MiB, 200 * GiB, dueAt! + 5000);
    expect(p.due(dueAt! + 5000)).toBe(false); // inside the minimum interval
    // an idle disk waits for the longest interval
    const idle = new DiskPacer(cfg, 0);
    idle.onSample(100 * GiB, 200 * GiB, 0);
    idle.onPassStart(10_000);
    idle.onPassDone(100 * MiB, 100 * GiB, 10_000);
    idle.onSample(100 * GiB, 200 * GiB, 60_000);
    expect(idle.due(60_000)).toBe(false);
    expect(idle.due(10_000 + cfg.maxIntervalMs)).toBe(true);
  });
});

describe('RetentionScheduler with real files: a pass on the write rate, down to the low-water mark', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-disk-low-'));
  const imagesDir = join(work, 'var');
  const resultsDbPath = join(work, 'results.sqlite');
  const reviewDbPath = join(work, 'review.sqlite');
  const NOW = Date.now();

  beforeAll(async () => {
    await fillStation({ dbPath: resultsDbPath, imagesDir, runId: 'run-d', withMaps: false,
      parts: Array.from({ length: 20 }, (_, i) => ({ seq: i + 1, verdict: 'reject' as const, capturedAtMs: NOW - 3600_000 + i })) });
  }, 60_000);
  afterAll(() => { rmSync(work, { recursive: true, force: true }); });

  it('measures, deletes down to the low-water mark and reports the disk (gauges, \'disk\' events)', async () => {
    const registry = new client.Registry();
    // a budget the 20 saved rejects exceed: the first check measures (a pass), which deletes down to 80 %
    const s = RetentionScheduler.start({ budgetBytes: 4 * 1024 * 1024, rejectDays: 30, passDays: 1, passKeepEvery: 10,
      intervalMs: 3_600_000, checkIntervalMs: 200, minIntervalMs: 0, freeFloorBytes: 0,
      imagesDir, resultsDbPath, reviewDbPath, registry, logger: quiet, store: { update: () => undefined } });
    try {
      const events: boolean[] = [];
      s.on('disk', (d: { low: boolean }) => events.push(d.low));
      await until(() => s.disk().imagesBytes !== null, 30_000, 'the first pass to measure the images');
      const d = s.disk();
      expect(d.imagesBytes!).toBeGreaterThan(0);
      expect(d.freeBytes!).toBeGreaterThan(0);
      expect(d.totalBytes!).toBeGreaterThanOrEqual(d.freeBytes!);
      const text = await registry.metrics();
      expect(text).toMatch(/inspector_disk_budget_bytes 4194304/);
      expect(text).toMatch(/inspector_disk_images_bytes \d+/);
      expect(text).toMatch(/inspector_disk_free_bytes \d+/);
      expect(events.length).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  }, 60_000);
});

describe('a station with DISK_LOW raised: /health is degraded, the alarm says why', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-disk-station-'));
  let sim: PlcSimulator;
  let station: Station;

  beforeAll(async () => {
    const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
    // a few parts once the station is Ready, so that the triggered camera is 'running' (up)
    sim = new PlcSimulator({ port: plcPort, certificateFolder: join(work, 'pki-plc'), logger: quiet, gateWindowMs: 400, readyInterlock: true,
      line: { rate: 10, triggerPort, items: replayItems('test-images/test/parts'), maxParts: 5 } });
    await sim.start();
    station = await Station.start(resolveConfig({
      camera: { template: 'replay-triggered', folder: 'test-images/test/parts', triggerPort, cacheDir: join(work, 'replay-cache') },
      model: { providers: ['cpu'], intraOpNumThreads: 1 },
      plc: { endpoint: sim.endpoint, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work },
      registry: { statePath: join(work, 'registry-state.json') },
      calibration: { dir: join(work, 'calibration') },
      server: { enabled: false },
      // a floor no disk here has free: the station must say so at its first check
      retention: { freeFloorBytes: Number.MAX_SAFE_INTEGER, checkIntervalMs: 200 },
    }), quiet);
  }, 120_000);
  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('raises DISK_LOW from the free-space floor and reports degraded', async () => {
    await until(() => station.alarms.isRaised(Alarm.DISK_LOW), 30_000, 'DISK_LOW');
    await until(() => station.loop.rec.parts >= 1 && station.health().camera.state === 'up', 60_000, 'a part through the camera');
    const h = station.health();
    expect([h.camera.state, h.model.state, h.plc.state]).toEqual(['up', 'up', 'up']);
    expect(h.status).toBe('degraded'); // by the disk alone
    expect(h.alarms.find((a) => a.startsWith('DISK_LOW'))).toMatch(/free space .* under the floor/);
  });
});
