/**
 * Faults at the station level, all real: the PLC's OPC UA server stops
 * mid-run while the line (the simulator's clock triggering the replay camera)
 * runs on; the model package is missing or malformed at start-up.
 */
import { describe, it, expect } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { until } from './helpers/wait.js';
import { lineOptions, stopLineAndCapture, triggeredCamera } from './helpers/line.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { Alarm } from '../inspector/station/alarms.js';


describe('PLC server stopped mid-run', () => {
  it('keeps inspecting, alarms, stores every part, reconnects; the PLC fail-safe-rejects the parts without a verdict', async () => {
    const work = mkdtempSync(join(tmpdir(), 'inspector-fault-'));
    const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
    const folder = 'test-images/test/parts';
    // the line's clock and gate windows run on whether or not the PLC's OPC UA server is up
    const sim = new PlcSimulator({ port: plcPort, gateWindowMs: 100, certificateFolder: join(work, 'pki-plc'), logger,
      line: lineOptions({ rate: 50, triggerPort, folder }) });
    await sim.start();
    const station = await Station.start(resolveConfig({
      camera: triggeredCamera({ triggerPort, folder }),
      model: { providers: ['cpu'] },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'none' },
      server: { enabled: false },
    }), logger);
    sim.startLine();
    try {
      await until(() => station.loop.rec.parts >= 40, 10_000, '40 parts');
      expect(station.alarms.isRaised(Alarm.PLC_LINK_DOWN)).toBe(false);

      await sim.stopServer();
      const partsAtStop = station.loop.rec.parts;
      await until(() => station.alarms.isRaised(Alarm.PLC_LINK_DOWN), 5_000, 'the PLC alarm');
      expect(station.health().plc.state).toBe('down');
      expect(station.health().alarms.join()).toMatch(/PLC_LINK_DOWN/);
      // the line kept running, and the station kept inspecting
      await until(() => station.loop.rec.parts >= partsAtStop + 30, 10_000, '30 parts inspected during the outage');

      await sim.startServer();
      const partsDuringOutage = station.loop.rec.parts - partsAtStop;
      await until(() => station.plc.state === 'connected', 15_000, 'reconnection');
      await until(() => !station.alarms.isRaised(Alarm.PLC_LINK_DOWN), 2_000, 'alarm cleared');
      const ackedAtRecovery = station.loop.rec.plcAcked;
      await until(() => station.loop.rec.plcAcked >= ackedAtRecovery + 30, 5_000, 'writes after recovery');

      await stopLineAndCapture(station, sim);
      await until(() => sim.pendingParts === 0, 5_000, 'the last gate windows to close');
      await station.settleOutcomes(10_000);
      await station.store.flush();
      const rec = station.loop.rec;
      const c = sim.counters();
      expect(station.plc.counters.reconnects).toBeGreaterThanOrEqual(1);
      expect(rec.plcFailed).toBeGreaterThanOrEqual(partsDuringOutage - 5);
      // every part the line numbered has its one row, including the parts whose result the PLC never got
      const rows = await station.store.query({ runId: station.runId, limit: 100_000, offset: 0 });
      expect(new Set(rows.map((r) => r.part_id)).size).toBe(rows.length);
      expect(rows.length).toBe(c.Parts);
      expect(await station.store.count(station.runId)).toBe(c.Parts);
      expect(rows.filter((r) => r.reason === null).length).toBe(rec.parts - rec.inferenceTimeouts);
      expect(rows.filter((r) => r.plc_status === 'failed').length).toBe(rec.plcFailed);
      // the PLC's outcomes were read back after the reconnection, those of the outage included
      expect((await station.store.partAccounting(station.runId)).gate.unknown).toBe(0);
      // the PLC rejected by timeout every part that got no verdict, and accepted none of them
      expect(c.RejectedTimeout).toBeGreaterThanOrEqual(rec.plcFailed);
      expect(c.Accepted + c.Rejected).toBe(c.Parts);
      expect(c.OrphanResults + c.WrongEpochResults + c.DuplicateResults).toBe(0);
      const outcomes = sim.outcomes();
      let timeouts = 0;
      // a timed-out part is a reject, whatever a late result said; without a late result it had none at all
      for (const o of outcomes.values()) if (o.outcome === 'timeout') { timeouts++; if (!o.late) expect(o.pass).toBeNull(); }
      expect(timeouts).toBe(c.RejectedTimeout);
    } finally {
      await station.stop();
      await sim.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('model package faults at start-up', () => {
  // the camera is never opened: the model fails first
  const base = resolveConfig({ camera: { width: 1280, height: 1024 }, server: { enabled: false } });

  function packageWith(mutate: (dir: string) => void): string {
    const dir = mkdtempSync(join(tmpdir(), 'inspector-pkg-'));
    mkdirSync(dir, { recursive: true });
    copyFileSync('models/default/1.0.0/manifest.json', join(dir, 'manifest.json'));
    copyFileSync('models/default/1.0.0/model.onnx', join(dir, 'model.onnx'));
    mutate(dir);
    return dir;
  }

  it('a missing model file is a coded error before the camera opens', async () => {
    const dir = packageWith((d) => rmSync(join(d, 'model.onnx')));
    await expect(Station.start({ ...base, model: { ...base.model, packageDir: dir } }, logger))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_PACKAGE_MISSING' });
  });

  it('a malformed model file (hash updated to match) is INSPECTOR_MODEL_MALFORMED', async () => {
    const dir = packageWith((d) => {
      const junk = Buffer.from('this is not an onnx graph');
      writeFileSync(join(d, 'model.onnx'), junk);
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      m.sha256 = createHash('sha256').update(junk).digest('hex');
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    });
    await expect(Station.start({ ...base, model: { ...base.model, packageDir: dir } }, logger))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_MALFORMED' });
  });

  it('a tampered model file is INSPECTOR_MODEL_HASH_MISMATCH', async () => {
    const dir = packageWith((d) => writeFileSync(join(d, 'model.onnx'), Buffer.concat([readFileSync(join(d, 'model.onnx')), Buffer.from([0])])));
    await expect(Station.start({ ...base, model: { ...base.model, packageDir: dir } }, logger))
      .rejects.toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH' });
  });
});
