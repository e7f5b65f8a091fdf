/**
 * The calibration routes' OpenCV work runs off the serving thread
 * (inspector/server/routes/calibration-opencv.ts): a lens fit over 16 synthetic
 * board views runs in the calibration OpenCV worker while /health is asked and
 * answered — the health answer arrives while the fit is still running (order,
 * not timing); the fit is right; the serving thread never loads the binding;
 * the refusals keep their codes across the thread; the same single worker
 * serves later jobs (board detection, plane fits).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { writeGrayPng } from '../inspector/core/gray-image.js';
import { renderBoard, variedPoses } from '../calibration/synthetic-board.js';
import type { CameraModel } from '../calibration/camera-model.js';
import { openCvJobs, openCvLoadedHere } from '../inspector/server/routes/calibration-opencv.js';

const health = {
  status: 'up' as const, station: 't', uptimeS: 1, parts: 0,
  camera: { state: 'up' as const, detail: '', frames: 0, dropped: 0, restarts: 0, errors: 0 },
  model: { state: 'up' as const, name: 'm', version: '1.0.0', provider: 'cpu', fallbacks: [] },
  plc: { state: 'up' as const, detail: '', endpoint: 'opc.tcp://x', writes: 0, writeErrors: 0, reconnects: 0 },
  alarms: [],
};
const view = { health: async () => health, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
const camera: CameraModel = { fx: 1500, fy: 1490, cx: 652, cy: 505, dist: [-0.12, 0.08, 0.001, -0.0015, -0.02] };
const board = { cols: 9, rows: 6, squareMm: 5 };
const size = { width: 1280, height: 1024 };
let dir: string;
let app: FastifyInstance;
let cookie = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'calib-lens-worker-'));
  mkdirSync(join(dir, 'boards'));
  for (const [i, pose] of variedPoses(camera, board, size, 16, 11).entries()) {
    await writeGrayPng(join(dir, 'boards', `board-${String(i).padStart(2, '0')}.png`), renderBoard(camera, board, pose, { ...size, noise: 2, seed: i + 1 }), 1);
  }
  mkdirSync(join(dir, 'blanks'));
  for (let i = 0; i < 10; i++) await writeGrayPng(join(dir, 'blanks', `b${i}.png`), { width: 320, height: 256, data: new Uint8Array(320 * 256).fill(100 + i) }, 1);
  app = await buildApp({ view, logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'none'), calibrationDir: join(dir, 'calibration') });
  await app.review.accounts.create('alice', 'alice-password-1', 'admin');
  const r = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'alice', password: 'alice-password-1' } });
  cookie = String(r.headers['set-cookie']).split(';')[0]!;
}, 120_000);
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload, headers: { cookie } });

describe('lens calibration off the serving thread', () => {
  it('answers /health while a lens fit runs, and the fit is right', async () => {
    expect(openCvLoadedHere()).toBe(false);
    const order: string[] = [];
    openCvJobs.on('end', (e: { op: string }) => order.push(`end:${e.op}`));
    const started = new Promise<void>((res) => openCvJobs.once('start', (e: { op: string }) => { order.push(`start:${e.op}`); res(); }));
    const lens = post('/api/calibration/lens', { imagesDir: join(dir, 'boards'), board }).then((r) => { order.push('lens-reply'); return r; });
    await started; // the OpenCV part of the fit is running now
    const h = await app.inject({ method: 'GET', url: '/health' });
    order.push('health-reply');
    expect(h.statusCode).toBe(200);
    const r = await lens;
    expect(order).toEqual(['start:lens', 'health-reply', 'end:lens', 'lens-reply']);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.used).toBe(16);
    expect(body.rms).toBeLessThan(0.5);
    const cur = (await app.inject({ method: 'GET', url: '/api/calibration', headers: { cookie } })).json();
    expect(Math.abs(cur.doc.lens.camera.fx - camera.fx) / camera.fx).toBeLessThan(0.01);
    expect(Math.abs(cur.doc.lens.camera.cx - camera.cx)).toBeLessThan(10);
    expect(openCvLoadedHere()).toBe(false); // this thread never loaded the binding
    openCvJobs.removeAllListeners('end');
  }, 120_000);

  it('keeps the refusal codes across the thread', async () => {
    const none = await post('/api/calibration/lens', { imagesDir: join(dir, 'blanks'), board });
    expect(none.statusCode).toBe(422);
    expect(none.json().code).toBe('INSPECTOR_CALIBRATION_NO_BOARD');
    const few = await post('/api/calibration/lens', { imagesDir: join(dir, 'boards'), board, minViews: 20 });
    expect(few.statusCode).toBe(422);
    expect(few.json().code).toBe('INSPECTOR_CALIBRATION_TOO_FEW_IMAGES');
    const line = await post('/api/calibration/plane', { points: [{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 3 }], mm: [{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 3 }] });
    expect(line.statusCode).toBe(400);
    expect(line.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
    const missing = await post('/api/calibration/plane', { imagePath: join(dir, 'nope.png'), board });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
  }, 60_000);

  it('runs plane fits and board detection in the same worker', async () => {
    const starts: string[] = [];
    openCvJobs.on('start', (e: { op: string }) => starts.push(e.op));
    const plane = await post('/api/calibration/plane', { imagePath: join(dir, 'boards', 'board-00.png'), board });
    expect(plane.statusCode, plane.body).toBe(200);
    expect(plane.json().undistorted).toBe(true); // the lens of the first test is used
    const pts = await post('/api/calibration/plane', {
      points: [{ x: 440, y: 362 }, { x: 840, y: 362 }, { x: 840, y: 662 }, { x: 440, y: 662 }],
      mm: [{ x: 0, y: 0 }, { x: 80, y: 0 }, { x: 80, y: 60 }, { x: 0, y: 60 }] });
    expect(pts.statusCode, pts.body).toBe(200);
    const png = await app.inject({ method: 'GET', url: `/api/calibration/lens/view.png?imagesDir=${encodeURIComponent(join(dir, 'boards'))}&name=board-03.png&width=640`, headers: { cookie } });
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(starts).toEqual(['planeFromBoard', 'planeFromPoints', 'detect']);
    expect(openCvLoadedHere()).toBe(false);
    openCvJobs.removeAllListeners('start');
  }, 60_000);
});
