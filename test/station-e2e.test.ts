/**
 * End to end, all real: the PLC simulator's line clock fires the photo-eye and
 * triggers the GStreamer replay camera with each part's (Epoch, PartId);
 * onnxruntime-node in a worker, OPC UA on loopback, SQLite results. A few
 * hundred parts from test-images/test. Every part the PLC numbered has exactly
 * one row, and the row holds the gate's outcome read back from the PLC.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { readdirSync } from 'node:fs';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { stopLineAndCapture } from './helpers/line.js';

const PARTS = 240;
const gt = JSON.parse(readFileSync('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: 'good' | 'defect' }> };
const manifest = JSON.parse(readFileSync('models/default/1.0.0/manifest.json', 'utf8')) as { training: { metrics: { test_accuracy: number } } };
const labelOf = new Map(gt.images.map((i) => [basename(i.file), i.label]));

describe('station end to end: replay camera → ONNX → OPC UA PLC', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-e2e-'));
  let sim: PlcSimulator;
  let station: Station;

  beforeAll(async () => {
    const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
    const items = readdirSync('test-images/test/parts').filter((f) => /\.(png|jpe?g)$/i.test(f)).length;
    // the line waits for the station before it starts: parts before that would be rows of 'not_seen'
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 150, certificateFolder: join(work, 'pki-plc'), logger,
      line: { rate: 30, triggerPort, items, autoStart: false, maxParts: PARTS } });
    await sim.start();
    station = await Station.start(resolveConfig({
      camera: { template: 'replay-triggered', folder: 'test-images/test/parts', triggerPort, cacheDir: 'var/replay-cache' },
      model: { providers: ['cpu'], intraOpNumThreads: 2 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'rejects' },
      server: { enabled: false },
    }), logger);
    sim.startLine();
    while (sim.lineRunning || sim.pendingParts > 0) await new Promise((r) => setTimeout(r, 20));
    // the station may still be working through its backlog: its last results (late ones too) reach the
    // PLC before the outcomes are read back for the last time
    await stopLineAndCapture(station, sim, 60_000);
    await station.settleOutcomes(10_000);
  }, 120_000);

  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('every part got exactly one result at the PLC, and exactly one row holding the PLC\'s outcome', async () => {
    const outcomes = sim.outcomes();
    const c = sim.counters();
    expect(c.Parts).toBe(PARTS);
    const rows = await station.store.query({ runId: station.runId, limit: 100_000, offset: 0 });
    const byPart = new Map(rows.map((r) => [r.part_id, r]));
    expect(byPart.size).toBe(rows.length);
    expect(rows.length).toBe(PARTS);
    let inspected = 0;
    for (let id = 1; id <= PARTS; id++) {
      const o = outcomes.get(id);
      const row = byPart.get(id);
      expect(o, `part ${id}`).toBeDefined();
      expect(row, `row of part ${id}`).toBeDefined();
      expect(row!.line_epoch).toBe(sim.epoch);
      // the row says what the gate did, as the PLC reports it
      expect(row!.gate_outcome, `part ${id}`).toBe(o!.late ? 'late' : o!.outcome);
      if (row!.reason === null) {
        inspected++;
        // the camera photographed the part the line says was there
        expect(basename(row!.source_ref ?? '')).toBe(readdirSync('test-images/test/parts').filter((f) => /\.(png|jpe?g)$/i.test(f)).sort()[(id - 1) % labelOf.size]);
      }
    }
    // a loaded CI box may drop a few parts: each has its row (reason), never a silent gap
    expect(inspected).toBeGreaterThanOrEqual(PARTS - station.source.stats.dropped - 3);
    const acc = await station.store.partAccounting(station.runId);
    expect(acc.duplicates).toBe(0);
    expect(acc.gate.unknown).toBe(0);
    expect(c.DuplicateResults).toBe(0);
    expect(c.WrongEpochResults).toBe(0);
    expect(c.OrphanResults).toBe(0);
  });

  it('defective parts are rejected and good ones pass, as well as the model measured', async () => {
    const rows = (await station.store.query({ runId: station.runId, limit: 100_000, offset: 0 })).filter((r) => r.reason === null);
    const outcomes = sim.outcomes();
    let correct = 0;
    let judged = 0;
    for (const row of rows) {
      const label = labelOf.get(basename(row.source_ref ?? ''));
      expect(label, `ground truth for ${row.source_ref}`).toBeDefined();
      const plc = outcomes.get(row.part_id!)!;
      // the PLC did what the station said (a late result stays a reject)
      if (!plc.late && plc.outcome !== 'timeout') expect(plc.outcome).toBe(row.verdict === 'pass' ? 'accepted' : 'rejected');
      judged++;
      if ((label === 'good') === (row.verdict === 'pass')) correct++;
    }
    // a loaded CI box may drop parts (each has its row with a reason, checked above): the accuracy is
    // judged on the parts inspected, and there must be enough of them for it to mean something
    expect(judged).toBeGreaterThanOrEqual(40);
    const accuracy = correct / judged;
    expect(accuracy).toBeGreaterThanOrEqual(manifest.training.metrics.test_accuracy - 0.03);
  });

  it('the counters agree: station, store, PLC', async () => {
    const rec = station.loop.rec;
    const c = sim.counters();
    const lost = Object.values(rec.notInspected).reduce((a, b) => a + b, 0);
    expect(rec.plcFailed).toBe(0);
    expect(rec.parts + lost).toBe(PARTS);
    expect(await station.store.count(station.runId)).toBe(PARTS);
    // every part got a result from the station: inspected or an explicit not-inspected reject
    expect(c.ResultsReceived).toBe(PARTS);
    expect(c.Accepted + c.Rejected).toBe(c.Parts);
    expect(station.alarms.isRaised('PART_SYNC')).toBe(false);
    const oc = station.outcomes.stats;
    expect(oc.refusals).toBe(0);
    expect(oc.mismatches).toBe(0);
  });
});
