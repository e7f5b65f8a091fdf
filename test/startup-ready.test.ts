/**
 * Start-up readiness (issue 16): the line interlocks on the station's Station.Ready bit.
 *
 * Measured before: the camera ran ~15 s before the HTTP server and the line was ready, and 193 of
 * the first 402 parts of a demo were timeout rejects at the PLC. Now the station writes
 * Station.Ready only when everything that judges a part is up (model warmed, store, server, camera
 * last), and the PLC simulator with `readyInterlock` holds its line until then (and from the start
 * of a stop). Here the line's clock is RUNNING before the station even starts, from a clean folder
 * (no results, no registry state, no PKI), as `inspector demo` does: without the interlock its first
 * parts would be fail-safe timeouts of parts nobody saw. The counts come from the PLC's own outcomes
 * and the station's rows; nothing is timed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { PlcLink } from '../inspector/plc/plc-link.js';
import { defaultPlcNodeIds } from '../inspector/plc/plc-contract.js';
import { replayItems } from './helpers/line.js';
import { until } from './helpers/wait.js';
import { DEFAULT_REHEARSAL } from '../inspector/station/rehearsal.js';

const FOLDER = 'test-images/test/parts';
const FIRST = 60;
const quiet = logger.child({ test: 'startup-ready' }, { level: 'warn' });

describe('the PLC interlock on Station.Ready (simulator + link)', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-ready-link-'));
  let sim: PlcSimulator;
  let link: PlcLink;

  beforeAll(async () => {
    sim = new PlcSimulator({ port: await freePort(), certificateFolder: join(work, 'pki-plc'), logger: quiet, readyInterlock: true,
      heartbeatIntervalMs: 100 });
    await sim.start();
    link = new PlcLink({ endpoint: sim.endpoint, nodeIds: defaultPlcNodeIds, heartbeatMs: 100, security: { mode: 'None' },
      certificateFolder: join(work, 'pki-link'), logger: quiet });
    await link.start();
    await until(() => link.state === 'connected', 30_000, 'the link to connect');
  }, 60_000);
  afterAll(async () => {
    await link?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('a part that comes while the station is not ready is rejected at once, untriggered, as not ready (not a timeout)', async () => {
    await until(() => sim.stationAlive(), 10_000, 'the heartbeat');
    expect(sim.counters().StationReady).toBe(false); // alive but not Ready
    const id = sim.partArrived();
    expect(sim.outcomes().get(id)?.outcome).toBe('not_ready');
    expect(sim.pendingParts).toBe(0); // no window: no result can accept it
    const c = sim.counters();
    expect(c.RejectedNotReady).toBe(1);
    expect(c.Rejected).toBe(1);
    expect(c.RejectedTimeout).toBe(0);
    expect(c.LateResults).toBe(0);
    expect(sim.outcomeSummary(id, id)).toMatchObject({ notReady: 1, timeout: 0, late: 0, noResult: 0 });
  });

  it('Ready opens the gate windows again; clearing it (or losing the heartbeat) closes them', async () => {
    await link.setReady(true);
    await until(() => sim.counters().StationReady, 10_000, 'StationReady');
    const id = sim.partArrived();
    expect(sim.pendingParts).toBe(1); // a window, waiting for the station's result
    await link.writeResult(id, sim.epoch, true, 0, 0.1);
    await until(() => sim.outcomes().get(id)?.outcome === 'accepted', 10_000, 'the accept');
    await link.setReady(false);
    expect(sim.counters().StationReady).toBe(false);
    const after = sim.partArrived();
    expect(sim.outcomes().get(after)?.outcome).toBe('not_ready');
    // the PLC reads Ready together with the heartbeat: a station that stops beating is not ready, whatever it wrote
    await link.setReady(true);
    expect(sim.counters().StationReady).toBe(true);
    await link.stop();
    await until(() => !sim.counters().StationReady, 10_000, 'StationReady to drop with the heartbeat');
    expect(sim.counters().RejectedNotReady).toBe(2);
  });
});

describe('a station started from a clean folder on a running line: no timeout rejects at start-up', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-ready-'));
  let sim: PlcSimulator;
  let station: Station | null = null;

  beforeAll(async () => {
    const [plcPort, triggerPort, httpPort] = [await freePort(), await freePort('udp'), await freePort()];
    // the demo's line (20 parts/s), its clock started NOW: it must hold until the station is Ready.
    // The gate window is wider than the demo's 100 ms only so that a loaded 2-core test box does not
    // turn a slow part in the middle of the run into a timeout: start-up is what is tested here.
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 400, certificateFolder: join(work, 'pki-plc'), logger: quiet,
      readyInterlock: true, line: { rate: 20, triggerPort, items: replayItems(FOLDER), autoStart: true, maxParts: FIRST } });
    await sim.start();
    expect(sim.lineRunning).toBe(true);
    station = await Station.start(resolveConfig({
      camera: { template: 'replay-triggered', folder: FOLDER, triggerPort, cacheDir: join(work, 'replay-cache') },
      model: { providers: ['cpu'], intraOpNumThreads: 1 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'var/results.sqlite'), imagesDir: join(work, 'var'), saveImages: 'rejects' },
      registry: { statePath: join(work, 'var/registry-state.json') },
      calibration: { dir: join(work, 'var/calibration') },
      server: { enabled: true, host: '127.0.0.1', port: httpPort },
    }), quiet);
    await until(() => sim.lastPartId >= FIRST && sim.pendingParts === 0, 120_000, `the line's first ${FIRST} parts to be decided`);
    await until(() => station!.loop.identity.highestAccounted(sim.epoch) >= FIRST, 60_000, 'the station to account for them');
    await station.settleOutcomes(10_000);
  }, 240_000);

  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('the line held until the station was Ready, then every one of its first parts got a result in time', async () => {
    expect(sim.lineHolds).toBeGreaterThanOrEqual(1); // the clock ran before the station: it had to hold
    const sum = sim.outcomeSummary(1, FIRST);
    expect(sum.parts).toBe(FIRST);
    expect({ timeout: sum.timeout, late: sum.late, noResult: sum.noResult, notReady: sum.notReady })
      .toEqual({ timeout: 0, late: 0, noResult: 0, notReady: 0 });
    expect(sum.accepted + sum.rejected).toBe(FIRST);
    const c = sim.counters();
    expect(c.RejectedTimeout).toBe(0);
    expect(c.LateResults).toBe(0);
    expect(c.RejectedNotReady).toBe(0);
  });

  it('the station\'s rows say the same: one per part, each with a decided gate outcome, none a timeout or late', async () => {
    const rows = await station!.store.query({ runId: station!.runId, limit: 10_000, offset: 0 });
    const first = rows.filter((r) => r.line_epoch === sim.epoch && r.part_id !== null && r.part_id <= FIRST);
    expect(new Set(first.map((r) => r.part_id)).size).toBe(FIRST);
    const outcomes = first.map((r) => r.gate_outcome);
    expect(outcomes.filter((o) => o === 'timeout' || o === 'late')).toEqual([]);
    expect(outcomes.every((o) => o === 'accepted' || o === 'rejected')).toBe(true);
    expect(first.filter((r) => r.reason !== null)).toEqual([]); // every part inspected, none lost or unseen
  });

  it('the whole path was rehearsed before Ready, and the rehearsal left no row, no part and no camera frame behind', async () => {
    const s = station!;
    expect(s.rehearsal).toMatchObject({ frames: DEFAULT_REHEARSAL.frames, failed: 0, timedOut: false });
    expect(s.loop.rec.rehearsals).toBe(DEFAULT_REHEARSAL.frames);
    expect(Number.isFinite(s.rehearsal!.lastMs)).toBe(true);
    const rows = await s.store.query({ runId: s.runId, limit: 10_000, offset: 0 });
    expect(rows.filter((r) => r.part_id === null || r.line_epoch === null)).toEqual([]); // every row is a part of the line
    expect(new Set(rows.map((r) => `${r.line_epoch}/${r.part_id}`)).size).toBe(rows.length);
    expect(Math.min(...rows.map((r) => r.seq))).toBe(1); // the first row is the first part's
    expect(s.loop.rec.partSyncErrors).toBe(0);
    expect(s.loop.rec.duplicateParts).toBe(0);
    // camera frames are parts only: at least the ones the loop judged, at most those plus the ones dropped on the way
    const { frames } = s.source.stats;
    expect(frames).toBeGreaterThanOrEqual(s.loop.rec.parts);
    expect(frames).toBeLessThanOrEqual(s.loop.rec.parts + s.loop.rec.notInspected.dropped);
  });

  it('stopping clears Ready first: the PLC holds the line again', async () => {
    expect(sim.counters().StationReady).toBe(true);
    const s = station!;
    station = null;
    await s.stop();
    expect(sim.readyWritten).toBe(false); // written false by the station, not only lost with its heartbeat
    expect(sim.counters().StationReady).toBe(false);
  }, 60_000);
});
