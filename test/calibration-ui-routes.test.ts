/**
 * The calibration page's routes through fastify.inject: a board view with its
 * corners drawn (admin only, a real PNG of the view's size, refusals coded),
 * the undistorted view after a lens fit, and the live check without a station (503).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { writeGrayPng } from '../inspector/core/gray-image.js';
import { renderBoard } from '../calibration/synthetic-board.js';

const view = { health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
let dir: string;
let app: FastifyInstance;
const cookies: Record<string, string> = {};
const cookieOf = (c: string | string[] | undefined) => String(Array.isArray(c) ? c[0] : c).split(';')[0]!;
const board = { cols: 9, rows: 6, squareMm: 5 };
const cam = { fx: 1500, fy: 1490, cx: 652, cy: 505, dist: [-0.12, 0.08, 0.001, -0.0015, -0.02] as [number, number, number, number, number] };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-calib-ui-'));
  app = await buildApp({ view, logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'none'), calibrationDir: join(dir, 'calibration') });
  await app.review.accounts.create('alice', 'alice-password-1', 'admin');
  await app.review.accounts.create('bob', 'bob-password-1', 'operator');
  for (const [u, p] of [['alice', 'alice-password-1'], ['bob', 'bob-password-1']] as const) {
    const r = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u, password: p } });
    cookies[u] = cookieOf(r.headers['set-cookie']);
  }
  const img = renderBoard(cam, board, { rvec: [0.05, 0.1, 0.03], tvec: [-20, -12, 180] }, { width: 1280, height: 1024, noise: 2, seed: 3 });
  await writeGrayPng(join(dir, 'board.png'), img);
}, 60_000);
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

const get = (user: string, url: string) => app.inject({ method: 'GET', url, headers: { cookie: cookies[user]! } });

describe('calibration page routes', () => {
  it('draws the corners found on a board view (admin only)', async () => {
    const url = `/api/calibration/lens/view.png?imagesDir=${encodeURIComponent(dir)}&name=board.png&cols=9&rows=6&width=640`;
    expect((await get('bob', url)).statusCode).toBe(403);
    const r = await get('alice', url);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    const meta = await sharp(r.rawPayload).metadata();
    expect([meta.width, meta.height]).toEqual([640, 512]);
    // the overlay is coloured (green corners) on a grey image: some pixels have g > r + 40
    const { data, info } = await sharp(r.rawPayload).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let green = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i + 1]! > data[i]! + 40) green++;
    expect(green).toBeGreaterThan(200);
  });

  it('refuses a path in the name, a missing board spec and undistortion without a lens', async () => {
    const base = `/api/calibration/lens/view.png?imagesDir=${encodeURIComponent(dir)}`;
    expect((await get('alice', `${base}&name=${encodeURIComponent('../x.png')}&cols=9&rows=6`)).statusCode).toBe(400);
    const noBoard = await get('alice', `${base}&name=board.png`);
    expect(noBoard.statusCode).toBe(400);
    expect(noBoard.json().code).toMatch(/^INSPECTOR_CALIBRATION_/);
    const noLens = await get('alice', `${base}&name=board.png&cols=9&rows=6&undistort=true`);
    expect(noLens.statusCode).toBeGreaterThanOrEqual(400);
    expect(noLens.statusCode).toBeLessThan(500);
  });

  it('answers the live check with 503 when no station runs', async () => {
    const r = await get('bob', '/api/calibration/live-check');
    expect(r.statusCode).toBe(503);
  });
});
