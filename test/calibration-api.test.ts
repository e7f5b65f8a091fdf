/**
 * Calibration API through fastify.inject: admin-only writes with audit rows,
 * versions and rollback, coded 4xx refusals, plane scale from four points,
 * focus/exposure reference from an image the station stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { writeGrayPng } from '../inspector/core/gray-image.js';
import { renderBoard } from '../calibration/synthetic-board.js';

const view = { health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
let dir: string;
let app: FastifyInstance;
const cookies: Record<string, string> = {};
const cookieOf = (setCookie: string | string[] | undefined) => String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0]!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-calib-api-'));
  app = await buildApp({ view, logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'none'), calibrationDir: join(dir, 'calibration'), imagesDir: join(dir, 'var') });
  await app.review.accounts.create('alice', 'alice-password-1', 'admin');
  await app.review.accounts.create('bob', 'bob-password-1', 'operator');
  for (const [u, p] of [['alice', 'alice-password-1'], ['bob', 'bob-password-1']] as const) {
    const r = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u, password: p } });
    expect(r.statusCode).toBe(200);
    cookies[u] = cookieOf(r.headers['set-cookie']);
  }
});
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

const as = (user: string, method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) =>
  app.inject({ method, url, headers: { cookie: cookies[user]! }, ...(payload ? { payload } : {}) });

describe('calibration API', () => {
  it('is empty at first, refuses operators, saves an ROI as version 1 with an audit row', async () => {
    expect((await as('bob', 'GET', '/api/calibration')).json()).toMatchObject({ statusCode: 409, code: 'INSPECTOR_CALIBRATION_MISSING' });
    expect((await app.inject({ method: 'GET', url: '/api/calibration' })).statusCode).toBe(401);
    expect((await as('bob', 'PUT', '/api/calibration/roi', { x: 0, y: 0, width: 100, height: 100 })).statusCode).toBe(403);
    const bad = await as('alice', 'PUT', '/api/calibration/roi', { x: 1200, y: 0, width: 200, height: 100 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
    const ok = await as('alice', 'PUT', '/api/calibration/roi', { x: 100, y: 50, width: 800, height: 600 });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ version: 1, doc: { roi: { x: 100, y: 50, width: 800, height: 600 }, createdBy: 'alice' } });
    expect(app.review.audit.list({ action: 'calibration.roi', limit: 5 })).toMatchObject([{ actor: 'alice', target: 'calibration:v1', before: null }]);
    expect((await as('bob', 'GET', '/api/calibration')).json()).toMatchObject({ version: 1 });
  });

  it('fits the plane from four points (known mm per pixel), versions it, and rolls back', async () => {
    // a square-on plane: 80 x 60 mm seen as 400 x 300 px → 0.2 mm/px
    const r = await as('alice', 'POST', '/api/calibration/plane', {
      points: [{ x: 440, y: 362 }, { x: 840, y: 362 }, { x: 840, y: 662 }, { x: 440, y: 662 }],
      mm: [{ x: 0, y: 0 }, { x: 80, y: 0 }, { x: 80, y: 60 }, { x: 0, y: 60 }],
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().mmPerPx).toBeCloseTo(0.2, 6);
    expect(r.json().version).toBe(2);
    const cur = (await as('bob', 'GET', '/api/calibration')).json();
    expect(cur.doc.roi).toEqual({ x: 100, y: 50, width: 800, height: 600 }); // carried over
    const line = await as('alice', 'POST', '/api/calibration/plane', { points: [{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 3 }], mm: [{ x: 0, y: 0 }, { x: 1, y: 1 }, { x: 2, y: 2 }, { x: 3, y: 3 }] });
    expect(line.statusCode).toBe(400);
    const back = await as('alice', 'POST', '/api/calibration/activate', { version: 1 });
    expect(back.statusCode).toBe(200);
    expect((await as('bob', 'GET', '/api/calibration')).json().doc.plane).toBeUndefined();
    const versions = (await as('bob', 'GET', '/api/calibration/versions')).json() as Array<{ version: number; current: boolean }>;
    expect(versions.map((v) => [v.version, v.current])).toEqual([[1, true], [2, false]]);
    expect((await as('bob', 'GET', '/api/calibration/versions/7')).statusCode).toBe(404);
  });

  it('measures an image and saves it as the focus/exposure reference; a lens set with no board is a coded 422', async () => {
    const img = renderBoard({ fx: 1500, fy: 1500, cx: 640, cy: 512, dist: [0, 0, 0, 0, 0] }, { cols: 9, rows: 6, squareMm: 5 },
      { rvec: [0.1, 0.1, 0], tvec: [-25, -15, 200] }, { width: 1280, height: 1024, noise: 1 });
    // the checks read images the station stored (inside its images folder) or uploaded ones (security-abuse.test.ts)
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'var', 'images'), { recursive: true });
    await writeGrayPng(join(dir, 'var', 'images', 'frame.png'), img, 1);
    const c = await as('bob', 'POST', '/api/calibration/check', { imagePath: 'images/frame.png' });
    expect(c.statusCode).toBe(200);
    expect(c.json().tenengrad).toBeGreaterThan(0);
    const ref = await as('alice', 'POST', '/api/calibration/checks/reference', { imagePath: 'images/frame.png' });
    expect(ref.statusCode).toBe(200);
    expect(ref.json().doc.checks.reference.tenengrad).toBeCloseTo(c.json().tenengrad, 6);
    const blanks = join(dir, 'blanks');
    mkdirSync(blanks);
    for (let i = 0; i < 10; i++) await writeGrayPng(join(blanks, `b${i}.png`), { width: 320, height: 256, data: new Uint8Array(320 * 256).fill(100 + i) }, 1);
    const lens = await as('alice', 'POST', '/api/calibration/lens', { imagesDir: blanks, board: { cols: 9, rows: 6, squareMm: 5 } });
    expect(lens.statusCode).toBe(422);
    expect(lens.json().code).toBe('INSPECTOR_CALIBRATION_NO_BOARD');
  }, 60_000);
});
