import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../inspector/server/app.js';
import { StationMetrics } from '../inspector/station/metrics.js';
import type { HealthReport, StationView } from '../inspector/server/station-view.js';

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
