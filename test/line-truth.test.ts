/**
 * Line truth under faults, all real: the PLC simulator (OPC UA on loopback, its own line clock
 * triggering the GStreamer replay camera), the station, SQLite on disk.
 *
 *  - the PLC restarts (a new simulator on the same ports: new epoch, parts numbered from 1 again):
 *    the station resynchronises, no result of the old numbering is applied to a new part, good
 *    parts are accepted again, every part of both epochs has exactly one row;
 *  - the station restarts while the line runs: the parts it missed get their rows (not_seen, with
 *    the PLC's outcome read back from its log), and it accepts good parts again.
 * No wall-clock assertion: every wait is on a condition (generous timeouts for a loaded CI box).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { lineOptions, triggeredCamera } from './helpers/line.js';
import { until } from './helpers/wait.js';

const FOLDER = 'test-images/test/parts';
const RATE = 15;

describe('line truth: part identity across PLC and station restarts', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-line-truth-'));
  const dbPath = join(work, 'results.sqlite');
  let sims: PlcSimulator[] = [];
  let station: Station | null = null;

  afterAll(async () => {
    await station?.stop().catch(() => undefined);
    for (const s of sims) await s.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  const config = (plcPort: number, triggerPort: number) => resolveConfig({
    camera: triggeredCamera({ triggerPort, folder: FOLDER }),
    model: { providers: ['cpu'] },
    plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, security: { mode: 'None' } },
    results: { dbPath, imagesDir: work, saveImages: 'none' },
    registry: { statePath: join(work, 'registry.json') }, calibration: { dir: join(work, 'calibration') },
    server: { enabled: false }, retention: { enabled: false },
  });
  const newSim = (port: number, triggerPort: number) => {
    const s = new PlcSimulator({ port, gateWindowMs: 300, certificateFolder: join(work, `pki-plc-${sims.length}`), logger,
      line: lineOptions({ rate: RATE, triggerPort, folder: FOLDER }) });
    sims.push(s);
    return s;
  };
  const accepted = (s: PlcSimulator) => s.counters().Accepted;

  it('a PLC restart: new epoch read at reconnect, old results never applied, good parts accepted again, one row per part', async () => {
    const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
    const a = newSim(plcPort, triggerPort);
    await a.start();
    station = await Station.start(config(plcPort, triggerPort), logger);
    a.startLine();
    await until(() => accepted(a) >= 5, 60_000, 'good parts accepted by the first PLC');
    // the PLC goes away with parts in flight, and comes back renumbering from 1 under a new epoch
    a.stopLine();
    const lastOfA = a.lastPartId;
    await a.stop();
    const b = newSim(plcPort, triggerPort);
    await b.start();
    expect(b.epoch).not.toBe(a.epoch);
    b.startLine();
    await until(() => station!.plc.epoch === b.epoch, 60_000, 'the station to read the new epoch');
    await until(() => accepted(b) >= 5, 60_000, 'good parts accepted again after the PLC restart');
    const cb = b.counters();
    expect(cb.WrongEpochResults + cb.OrphanResults).toBe(0); // the old numbering never reached the new PLC as a result
    b.stopLine();
    const lastOfB = b.lastPartId;
    await until(() => station!.loop.identity.highestAccounted(b.epoch) >= lastOfB, 60_000, 'the last part accounted for');
    await station.settleOutcomes(10_000);
    // every part of the new epoch: exactly one row, with the PLC's outcome; inspected ones agree with the gate
    const outcomes = b.outcomes();
    for (let id = 1; id <= lastOfB; id++) {
      const row = await station.store.part(b.epoch, id);
      expect(row, `row of part ${b.epoch}/${id}`).not.toBeNull();
      const o = outcomes.get(id)!;
      expect(row!.gate_outcome, `part ${id}`).toBe(o.late ? 'late' : o.outcome);
      if (row!.reason === null && !o.late && o.outcome !== 'timeout') expect(o.outcome).toBe(row!.verdict === 'pass' ? 'accepted' : 'rejected');
    }
    // the first epoch's parts too (those decided before the PLC went away were read back)
    for (let id = 1; id <= lastOfA; id++) expect(await station.store.part(a.epoch, id), `row of part ${a.epoch}/${id}`).not.toBeNull();
    const acc = await station.store.partAccounting();
    expect(acc.duplicates).toBe(0);
    expect(station.loop.rec.duplicateParts).toBe(0);
  }, 240_000);

  it('a station restart: the parts it missed get their rows and outcomes, and it accepts good parts again', async () => {
    const b = sims.at(-1)!;
    const plcPort = Number(new URL(b.endpoint.replace('opc.tcp', 'http')).port);
    const triggerPort = station!.config.camera.triggerPort;
    b.startLine();
    await until(() => station!.loop.identity.highestAccounted(b.epoch) > b.lastPartId - 3 && accepted(b) > 10, 60_000, 'the line running');
    const lastBefore = station!.loop.identity.highestAccounted(b.epoch);
    await station!.stop();
    station = null;
    // the line goes on: parts nobody inspects, rejected by the PLC's timeout
    await until(() => b.lastPartId >= lastBefore + 10, 60_000, 'parts while the station is down');
    const acceptedWhileDown = accepted(b);
    station = await Station.start(config(plcPort, triggerPort), logger);
    await until(() => accepted(b) > acceptedWhileDown + 3, 60_000, 'good parts accepted after the station restart');
    b.stopLine();
    const last = b.lastPartId;
    await until(() => station!.loop.identity.highestAccounted(b.epoch) >= last, 60_000, 'the last part accounted for');
    await station.settleOutcomes(10_000);
    const outcomes = b.outcomes();
    let missed = 0;
    for (let id = lastBefore + 1; id <= last; id++) {
      const row = await station.store.part(b.epoch, id);
      expect(row, `row of part ${id}`).not.toBeNull();
      expect(row!.gate_outcome, `part ${id}`).toBe(outcomes.get(id)!.late ? 'late' : outcomes.get(id)!.outcome);
      if (row!.reason === 'not_seen') { missed++; expect(row!.gate_outcome).toBe('timeout'); }
    }
    expect(missed).toBeGreaterThanOrEqual(10); // the parts of the outage, in the station's records as the PLC decided them
    const c = b.counters();
    expect(c.WrongEpochResults + c.OrphanResults + c.DuplicateResults).toBe(0);
    expect((await station.store.partAccounting()).duplicates).toBe(0);
  }, 240_000);
});
