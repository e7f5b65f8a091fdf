import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../inspector/server/app.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import type { HealthReport, StationView } from '../inspector/server/station-view.js';
import { logger } from '../inspector/core/logger.js';
import type { PlcCounters } from '../inspector/plc/plc-contract.js';
import { Alarms } from '../inspector/station/alarms.js';
import { buildHealth, lineReport } from '../inspector/station/health.js';
import { PartIdentity } from '../inspector/station/part-identity.js';
import { LoopRecorders } from '../inspector/station/part-loop.js';
import { PlcOutcomes } from '../inspector/station/plc-outcomes.js';
import type { Station } from '../inspector/station/station.js';

function healthy(overrides: Partial<HealthReport> = {}): HealthReport {
  return {
    status: 'up', station: 's1', uptimeS: 3, parts: 10,
    camera: { state: 'up', detail: 'replay: running', frames: 10, dropped: 0, restarts: 0, errors: 0 },
    model: { state: 'up', name: 'default', version: '1.0.0', provider: 'cpu', fallbacks: [] },
    plc: { state: 'up', detail: 'connected', endpoint: 'opc.tcp://127.0.0.1:4840', writes: 10, writeErrors: 0, reconnects: 0 },
    alarms: [],
    ...overrides,
  };
}

describe('HTTP server (fastify.inject)', () => {
  let app: FastifyInstance;
  let report = healthy();
  const counters = { camera: { frames: 7, dropped: 2, restarts: 1, errors: 1 }, plc: { writes: 5, writeErrors: 3, reconnects: 1, heartbeats: 9 }, images: { offered: 4, written: 3, dropped: 1, failed: 0 } };
  const metrics = new StationMetrics(() => counters, { station: 's1' });

  beforeAll(async () => {
    const view: StationView = { health: async () => report, metrics: () => metrics.text() };
    app = await buildApp({ view, logger: false });
  });
  afterAll(async () => { await app.close(); });

  it('GET /health is 200 when everything is up and 503 with the alarm when not', async () => {
    let res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('up');
    report = healthy({ status: 'down', plc: { ...healthy().plc, state: 'down', detail: 'disconnected' }, alarms: ['PLC_LINK_DOWN: link disconnected'] });
    res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json().alarms).toEqual(['PLC_LINK_DOWN: link disconnected']);
    expect(res.json().plc.state).toBe('down');
  });

  it('GET /metrics exposes stage histograms, counters read at scrape time and event-loop lag', async () => {
    metrics.observeStage('frame_to_verdict', 2.5);
    metrics.countPart('reject', 1, false);
    metrics.setAlarm('PLC_LINK_DOWN', true);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const body = res.body;
    expect(body).toMatch(/inspector_stage_seconds_bucket\{le="0.003",station="s1",stage="frame_to_verdict"\} 1/);
    expect(body).toMatch(/inspector_verdicts_total\{verdict="reject",code="1",station="s1"\} 1/);
    expect(body).toMatch(/inspector_frames_dropped_total\{station="s1"\} 2/);
    expect(body).toMatch(/inspector_plc_errors_total\{station="s1"\} 3/);
    expect(body).toMatch(/inspector_camera_restarts_total\{station="s1"\} 1/);
    expect(body).toMatch(/inspector_alarm\{alarm="PLC_LINK_DOWN",station="s1"\} 1/);
    expect(body).toMatch(/nodejs_eventloop_lag_seconds/);
  });

  it('unknown routes get a coded 404, not a 500', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('INSPECTOR_NOT_FOUND');
  });
});

/**
 * /health and /metrics from buildHealth over the live objects the station has (real Alarms,
 * LoopRecorders, PartIdentity and PlcOutcomes; a fake PLC link that answers the counters):
 * the PLC is degraded while PART_SYNC is raised, and its `line` holds both sides' counts.
 */
describe('Station vs PLC in /health and /metrics (fastify.inject)', () => {
  const quiet = logger.child({ mod: 'test' }, { level: 'silent' });
  let app: FastifyInstance;
  const counters = { camera: { frames: 0, dropped: 0, restarts: 0, errors: 0 }, plc: { writes: 0, writeErrors: 0, reconnects: 0, heartbeats: 0 }, images: { offered: 0, written: 0, dropped: 0, failed: 0 } };
  const metrics = new StationMetrics(() => counters, { station: 's2' });
  const alarms = new Alarms(quiet, (name, raised) => metrics.setAlarm(name, raised));
  const plcCounters: PlcCounters = {
    Parts: 0, Accepted: 0, Rejected: 0, RejectedTimeout: 0, LateResults: 0, SequenceMismatch: 0, DuplicateResults: 0, ResultsReceived: 0,
    OrphanResults: 0, WrongEpochResults: 0, RejectedNotReady: 0, StationReady: true, Epoch: 7, LastPartId: 0, OutcomeCount: 0, StationAlive: true, GateWindowMs: 200,
  };
  let outcomeLog = new Uint32Array(0);
  const plc = {
    state: 'connected', counters: { writes: 12, writeErrors: 0, reconnects: 0 },
    security: { mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' }, securityConfig: { mode: 'auto', policy: 'auto' },
    readStatus: async () => ({ counters: { ...plcCounters }, log: outcomeLog }),
  };
  const identity = new PartIdentity('trigger');
  identity.onSync(7, 0);
  const rec = new LoopRecorders();
  const outcomes = new PlcOutcomes({
    plc, store: { setGateOutcome: () => undefined, lastPartId: async () => 0 }, identity, nextSeq: () => 0, runId: 'r1', alarms, log: quiet,
  });
  const station = {
    config: { station: { name: 's2' }, camera: { template: 'replay' }, plc: { endpoint: 'opc.tcp://127.0.0.1:4840' },
      server: { enabled: true, tls: { mode: 'self-signed' } } },
    httpsFingerprint: 'AB:CD:EF',
    startedAt: Date.now(), source: { state: 'running', stats: counters.camera },
    runner: { modelName: 'default', modelVersion: '1.0.0', provider: 'cpu', fallbacks: [] },
    calibration: { version: null, undistort: null }, plc, alarms, loop: { rec }, outcomes,
  } as unknown as Station;
  metrics.watchLine(() => lineReport(station));
  const health = async () => (await app.inject({ method: 'GET', url: '/health' }));
  const scrape = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;

  beforeAll(async () => {
    app = await buildApp({ view: { health: async () => buildHealth(station), metrics: () => metrics.text() }, logger: false });
  });
  afterAll(async () => { await app.close(); });

  it('before the first read: up, the station side counted, the PLC side null and no PLC samples', async () => {
    rec.parts = 9;
    rec.notInspected.dropped = 1;
    const res = await health();
    expect(res.statusCode).toBe(200);
    const plcPart = res.json().plc;
    expect(plcPart.state).toBe('up');
    expect(plcPart.line).toEqual({
      plc: null,
      station: { inspected: 9, partSyncErrors: 0, notInspected: { dropped: 1, camera_error: 0, not_seen: 0, stale_epoch: 0, model_down: 0, inference_timeout: 0, station_stopping: 0, inspection_stopped: 0 } },
      readBack: { reads: 0, readErrors: 0, mismatches: 0, refusals: 0, missed: 0 },
    });
    // the server's transport, as the PLC link's security is said: which certificate, never part of `status`
    expect(res.json().server).toEqual({ tls: 'self-signed', detail: 'HTTPS, self-signed certificate, SHA-256 AB:CD:EF', fingerprint: 'AB:CD:EF' });
    const body = await scrape();
    expect(body).not.toMatch(/^inspector_plc_outcomes\{/m);
    expect(body).toMatch(/inspector_parts_not_inspected_total\{reason="dropped",station="s2"\} 1/);
    expect(body).toMatch(/inspector_part_sync_errors_total\{kind="refused",station="s2"\} 0/);
  });

  it('after a read: the PLC\'s counters beside the station\'s, in /health and /metrics', async () => {
    Object.assign(plcCounters, { Parts: 10, Accepted: 6, Rejected: 4, RejectedTimeout: 1, LateResults: 1, SequenceMismatch: 2, DuplicateResults: 1, LastPartId: 10 });
    await outcomes.poll();
    const res = await health();
    expect(res.statusCode).toBe(200);
    expect(res.json().plc.state).toBe('up');
    expect(res.json().plc.line.plc).toEqual({
      epoch: 7, lastPartId: 10, parts: 10, accepted: 6, rejected: 4, timeout: 1, late: 1, sequenceErrors: 2, refused: 0, duplicates: 1,
    });
    expect(res.json().plc.line.readBack.reads).toBe(1);
    const body = await scrape();
    expect(body).toMatch(/inspector_plc_outcomes\{outcome="accepted",station="s2"\} 6/);
    expect(body).toMatch(/inspector_plc_outcomes\{outcome="timeout",station="s2"\} 1/);
    expect(body).toMatch(/inspector_plc_outcomes\{outcome="sequence_error",station="s2"\} 2/);
    expect(body).toMatch(/inspector_plc_parts\{station="s2"\} 10/);
    expect(body).toMatch(/inspector_plc_epoch\{station="s2"\} 7/);
  });

  it('results the PLC refused raise PART_SYNC: the PLC is degraded (503), counted; an agreeing outcome clears it', async () => {
    Object.assign(plcCounters, { OrphanResults: 1, WrongEpochResults: 1 });
    await outcomes.poll();
    let res = await health();
    expect(res.statusCode).toBe(503);
    expect(res.json().status).toBe('degraded');
    expect(res.json().plc.state).toBe('degraded');
    expect(res.json().plc.detail).toMatch(/PART_SYNC/);
    expect(res.json().alarms.join()).toMatch(/^PART_SYNC: the PLC refused 2 result/);
    expect(res.json().plc.line.plc.refused).toBe(2);
    expect(res.json().plc.line.readBack.refusals).toBe(2);
    let body = await scrape();
    expect(body).toMatch(/inspector_plc_outcomes\{outcome="refused",station="s2"\} 2/);
    expect(body).toMatch(/inspector_part_sync_errors_total\{kind="refused",station="s2"\} 2/);
    expect(body).toMatch(/inspector_alarm\{alarm="PART_SYNC",station="s2"\} 1/);

    // the link down outranks it: red, not amber
    plc.state = 'disconnected';
    res = await health();
    expect(res.json().plc.state).toBe('down');
    expect(res.json().status).toBe('down');
    plc.state = 'connected';

    // part 11: the station said accept and the PLC accepted it
    identity.said({ epoch: 7, partId: 11 }, true);
    identity.accounted({ epoch: 7, partId: 11 });
    Object.assign(plcCounters, { Parts: 11, Accepted: 7, LastPartId: 11, OutcomeCount: 1 });
    outcomeLog = Uint32Array.of(11, 1);
    await outcomes.poll();
    res = await health();
    expect(res.statusCode).toBe(200);
    expect(res.json().plc.state).toBe('up');
    expect(res.json().alarms).toEqual([]);
    body = await scrape();
    expect(body).toMatch(/inspector_alarm\{alarm="PART_SYNC",station="s2"\} 0/);
    expect(body).toMatch(/inspector_part_sync_errors_total\{kind="refused",station="s2"\} 2/); // counted, not forgotten
  });
});
