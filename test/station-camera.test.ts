/**
 * The camera vanishes under a running station (Aravis' fake GigE Vision camera
 * on loopback, killed and restarted): the station alarms, health says so, the
 * restarts are counted in /metrics, and inspection resumes by itself.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { sleep, until } from './helpers/wait.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { Alarm } from '../inspector/station/alarms.js';
import { killProcess, startFakeCamera, waitForGvcpPortFree } from './helpers/fake-gige-camera.js';


describe('camera lost under a running station', () => {
  it('raises CAMERA_DOWN, counts the restarts, and inspects again once the camera is back', async () => {
    expect(await waitForGvcpPortFree(sleep)).toBe(true);
    const work = mkdtempSync(join(tmpdir(), 'inspector-cam-'));
    const plcPort = await freePort();
    const sim = new PlcSimulator({ port: plcPort, gateWindowMs: 150, certificateFolder: join(work, 'pki-plc'), logger });
    await sim.start();
    let cam = startFakeCamera();
    await sleep(500);
    const station = await Station.start(resolveConfig({
      // the fake camera's sensor is 512x512: the default model's preprocessing resizes (linear). It free-runs
      // (no trigger input): the station numbers its frames itself ('frame-count'); this test is about the camera
      camera: { template: 'gige', partIds: 'frame-count', ip: '127.0.0.1', width: 512, height: 512, rate: 25, firstFrameTimeoutMs: 20_000,
        stallTimeoutMs: 2_000, restart: { initialDelayMs: 200, maxDelayMs: 1_000 } },
      model: { providers: ['cpu'] },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'none' },
      server: { enabled: false },
    }), logger);
    try {
      await until(() => station.loop.rec.parts >= 10, 10_000, '10 parts');
      expect(station.health().camera.state).toBe('up');

      await killProcess(cam);
      await until(() => station.alarms.isRaised(Alarm.CAMERA_DOWN), 20_000, 'the camera alarm');
      expect(station.health().status).not.toBe('up');
      expect(station.health().camera.state).toBe('degraded');
      const partsWhileDown = station.loop.rec.parts;
      await until(() => station.source.stats.restarts >= 1, 20_000, 'a restart attempt');

      cam = startFakeCamera();
      await until(() => !station.alarms.isRaised(Alarm.CAMERA_DOWN), 40_000, 'the camera back');
      await until(() => station.loop.rec.parts >= partsWhileDown + 10, 10_000, 'parts after recovery');
      const metrics = (await station.metrics.text()).body;
      const restarts = Number(/inspector_camera_restarts_total\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
      expect(restarts).toBeGreaterThanOrEqual(1);
      expect(restarts).toBe(station.source.stats.restarts);
      expect(station.health().camera.state).toBe('up');
      // the model kept deciding: every frame got its row (inspected, or dropped under load with its reason)
      await station.stopCapture();
      await station.store.flush();
      const rec = station.loop.rec;
      const lost = Object.values(rec.notInspected).reduce((a, b) => a + b, 0);
      const rows = await station.store.query({ runId: station.runId, limit: 100_000 });
      expect(rows.filter((r) => r.reason === null).length).toBe(rec.parts - rec.inferenceTimeouts);
      expect(await station.store.count(station.runId)).toBe(rec.parts + lost);
    } finally {
      await station.stop();
      await killProcess(cam);
      await sim.stop();
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);
});
