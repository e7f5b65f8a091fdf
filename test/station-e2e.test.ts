/**
 * End to end, all real: GStreamer replay camera (with its photo-eye branch),
 * onnxruntime-node in a worker, OPC UA on loopback to the PLC simulator,
 * SQLite results. A few hundred parts from test-images/test.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';

const PARTS = 240;
const gt = JSON.parse(readFileSync('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: 'good' | 'defect' }> };
const manifest = JSON.parse(readFileSync('models/default/1.0.0/manifest.json', 'utf8')) as { training: { metrics: { test_accuracy: number } } };
const labelOf = new Map(gt.images.map((i) => [basename(i.file), i.label]));

describe('station end to end: replay camera → ONNX → OPC UA PLC', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-e2e-'));
  let sim: PlcSimulator;
  let station: Station;

  beforeAll(async () => {
    const [plcPort, photoEyePort] = [await freePort(), await freePort('udp')];
    sim = new PlcSimulator({ port: plcPort, photoEyePort, gateWindowMs: 150, certificateFolder: join(work, 'pki-plc'), logger });
    await sim.start();
    station = await Station.start(resolveConfig({
      camera: { template: 'replay', rate: 60, folder: 'test-images/test/parts', photoEyePort, cacheDir: 'var/replay-cache' },
      model: { providers: ['cpu'], intraOpNumThreads: 2 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station') },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'rejects' },
      server: { enabled: false },
    }), logger);
    while (station.loop.rec.parts < PARTS) await new Promise((r) => setTimeout(r, 20));
    await station.stopCapture();
    await new Promise((r) => setTimeout(r, 400)); // the last gate windows close
  }, 120_000);

  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('every part got exactly one result at the PLC, in time', () => {
    const outcomes = sim.outcomes();
    for (let id = 1; id <= PARTS; id++) {
      const o = outcomes.get(id);
      expect(o, `part ${id}`).toBeDefined();
      expect(o!.outcome, `part ${id}`).not.toBe('timeout');
      expect(o!.late, `part ${id}`).toBe(false);
    }
    const c = sim.counters();
    expect(c.DuplicateResults).toBe(0);
    expect(c.SequenceMismatch).toBe(0);
    expect(c.LateResults).toBe(0);
  });

  it('defective parts are rejected and good ones pass, as well as the model measured', async () => {
    const rows = await station.store.query({ runId: station.runId, limit: 100_000, offset: 0 }) as Array<{ seq: number; verdict: string; source_ref: string | null }>;
    const outcomes = sim.outcomes();
    let correct = 0;
    let judged = 0;
    for (const row of rows.filter((r) => r.seq <= PARTS)) {
      const label = labelOf.get(basename(row.source_ref ?? ''));
      expect(label, `ground truth for ${row.source_ref}`).toBeDefined();
      const plc = outcomes.get(row.seq)!;
      // the PLC did what the station said
      expect(plc.outcome).toBe(row.verdict === 'pass' ? 'accepted' : 'rejected');
      judged++;
      if ((label === 'good') === (row.verdict === 'pass')) correct++;
    }
    expect(judged).toBe(PARTS);
    const accuracy = correct / judged;
    expect(accuracy).toBeGreaterThanOrEqual(manifest.training.metrics.test_accuracy - 0.03);
  });

  it('the counters agree: station, store, PLC', async () => {
    const rec = station.loop.rec;
    const c = sim.counters();
    expect(rec.plcAcked).toBe(rec.parts);
    expect(rec.plcFailed).toBe(0);
    expect(await station.store.count(station.runId)).toBe(rec.parts);
    expect(c.ResultsReceived).toBe(rec.parts);
    // parts the photo-eye saw beyond the ones inspected are the frames in flight when capture stopped
    expect(c.Parts).toBeGreaterThanOrEqual(rec.parts);
    expect(c.Parts - rec.parts).toBeLessThanOrEqual(3);
    expect(c.Accepted + c.Rejected).toBe(c.Parts);
    expect(station.source.stats.dropped).toBe(0);
  });
});
