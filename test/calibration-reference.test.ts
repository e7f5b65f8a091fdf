/**
 * The golden-reference registration check of the calibration page
 * (inspector/server/routes/calibration-reference.ts) through fastify.inject,
 * against a package taught from good fixture parts (teachPackage) and the
 * repository's default package (no registration): a good part moved by a
 * known shift and rotation at full resolution is recovered at the reference's
 * scale; the overlay PNG shows the misfit before the warp and not after it; a
 * blank frame is ok=false with a reason (a result, not an error); a live
 * model without registration is the coded 409; only admins may check; the
 * shift comes in mm once a plane is calibrated.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { readGray, writeGrayPng, type GrayImage } from '../inspector/core/gray-image.js';
import { cv } from '../inspector/core/opencv.js';
import { teachPackage } from '../inspector/teach/teach-package.js';

interface GtImage { file: string; label: 'good' | 'defect' }
const goodFiles = (split: string): string[] => (JSON.parse(readFileSync(`test-images/${split}/ground-truth.json`, 'utf8')) as { images: GtImage[] })
  .images.filter((i) => i.label === 'good').map((i) => `test-images/${split}/${i.file}`);

/** The part rotated by `deg` about the centre (getRotationMatrix2D's sign, the registration's convention), then shifted. */
function moved(img: GrayImage, dx: number, dy: number, deg: number): GrayImage {
  const m = new cv.Mat(Buffer.from(img.data), img.height, img.width, cv.CV_8UC1);
  const r = cv.getRotationMatrix2D(new cv.Point2((img.width - 1) / 2, (img.height - 1) / 2), deg, 1).getDataAsArray();
  const a = new cv.Mat([[r[0]![0]!, r[0]![1]!, r[0]![2]! + dx], [r[1]![0]!, r[1]![1]!, r[1]![2]! + dy]], cv.CV_64F);
  return { width: img.width, height: img.height, data: new Uint8Array(m.warpAffine(a, new cv.Size(img.width, img.height), cv.INTER_LINEAR, cv.BORDER_REPLICATE).getData()) };
}

const view = { health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
const cookieOf = (c: string | string[] | undefined) => String(Array.isArray(c) ? c[0] : c).split(';')[0]!;

async function appWith(dir: string, tag: string, packageDir: string): Promise<{ app: FastifyInstance; cookies: Record<string, string> }> {
  const app = await buildApp({ view, logger: false, reviewDbPath: join(dir, `${tag}-review.sqlite`), uiDir: join(dir, 'none'),
    calibrationDir: join(dir, `${tag}-calibration`), model: { name: 'x', version: '0.0.0', threshold: 0.5, outputs: null, packageDir } });
  await app.review.accounts.create('alice', 'alice-password-1', 'admin');
  await app.review.accounts.create('bob', 'bob-password-1', 'operator');
  const cookies: Record<string, string> = {};
  for (const [u, p] of [['alice', 'alice-password-1'], ['bob', 'bob-password-1']] as const) {
    const r = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u, password: p } });
    cookies[u] = cookieOf(r.headers['set-cookie']);
  }
  return { app, cookies };
}

describe('registration check of the golden reference', () => {
  let dir: string;
  let taught: { app: FastifyInstance; cookies: Record<string, string> };
  let plain: { app: FastifyInstance; cookies: Record<string, string> };
  let pkgDir: string;
  const file = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'calib-ref-'));
    const good = await Promise.all(goodFiles('train').slice(0, 8).map((f) => readGray(f)));
    const r = await teachPackage({ good, outDir: join(dir, 'pkg', 'bracket-taught', '1.0.0'), name: 'bracket-taught', version: '1.0.0',
      downscale: 4, trainingData: 'test-images/train (8 good parts)' });
    pkgDir = r.packageDir;
    taught = await appWith(dir, 'taught', pkgDir);
    plain = await appWith(dir, 'plain', resolve('models/default/1.0.0'));
    const part = await readGray(goodFiles('test')[0]!);
    await writeGrayPng(file('part.png'), part, 1);
    await writeGrayPng(file('moved.png'), moved(part, 40, -28, 2), 1);
    await writeGrayPng(file('blank.png'), { width: 1280, height: 1024, data: new Uint8Array(1280 * 1024).fill(90) }, 1);
  }, 180_000);
  afterAll(async () => {
    await taught?.app.close();
    await plain?.app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const check = (a: { app: FastifyInstance; cookies: Record<string, string> }, user: string | null, payload: object) =>
    a.app.inject({ method: 'POST', url: '/api/calibration/reference/check', payload, headers: user ? { cookie: a.cookies[user]! } : {} });

  it('recovers a known shift and rotation of a good part at the reference scale, with an overlay that shows it', async () => {
    const still = await check(taught, 'alice', { imagePath: file('part.png') });
    expect(still.statusCode, still.body).toBe(200);
    const s = still.json();
    expect(s).toMatchObject({ ok: true, referenceSize: { width: 320, height: 256 }, frame: { width: 1280, height: 1024, source: 'file' },
      model: { name: 'bracket-taught', version: '1.0.0', reference: 'reference.png' }, shiftMm: null });
    expect(s.minQuality).toBeGreaterThan(0);
    expect(s.quality).toBeGreaterThan(s.minQuality);

    const r = await check(taught, 'alice', { imagePath: file('moved.png') });
    expect(r.statusCode, r.body).toBe(200);
    const m = r.json();
    expect(m.ok, m.reason).toBe(true);
    // the fixture part's own offset (s) is carried along by the move: expected = R(2°)·s + (40, -28)/4
    const a = 2 * Math.PI / 180;
    const ex = Math.cos(a) * s.dx + Math.sin(a) * s.dy + 10;
    const ey = -Math.sin(a) * s.dx + Math.cos(a) * s.dy - 7;
    expect(Math.abs(m.dx - ex)).toBeLessThan(0.3);
    expect(Math.abs(m.dy - ey)).toBeLessThan(0.3);
    expect(Math.abs(m.angleDeg - (s.angleDeg + 2))).toBeLessThan(0.1);
    expect(m.frameShiftPx.dx).toBeCloseTo(m.dx * 4, 6);
    expect(m.frameShiftPx.dy).toBeCloseTo(m.dy * 4, 6);

    // the overlay: reference in red, frame in cyan; misfit (|R − G|) is large before the warp and small after it
    expect(m.overlayUrl).toMatch(/^\/api\/calibration\/reference\/overlay\.png\?id=[0-9a-f]{16}$/);
    expect((await taught.app.inject({ method: 'GET', url: m.overlayUrl, headers: { cookie: taught.cookies.bob! } })).statusCode).toBe(403);
    const png = await taught.app.inject({ method: 'GET', url: m.overlayUrl, headers: { cookie: taught.cookies.alice! } });
    expect(png.statusCode).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    const { data, info } = await sharp(png.rawPayload).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const panelW = (info.width - 4) / 2;
    expect(panelW).toBe(320); // 2 panels of the reference's size (×1: 320 px is already ≥ 480/2)
    const top = info.height - 256;
    const misfit = (x0: number): number => {
      let sum = 0; let n = 0;
      for (let y = top + 30; y < info.height - 30; y++) {
        for (let x = x0 + 30; x < x0 + panelW - 30; x++) { const i = (y * info.width + x) * info.channels; sum += Math.abs(data[i]! - data[i + 1]!); n++; }
      }
      return sum / n;
    };
    const before = misfit(0);
    const after = misfit(panelW + 4);
    expect(before).toBeGreaterThan(3 * after);
  });

  it('answers a blank frame with ok=false and the reason (a result, not an error)', async () => {
    const r = await check(taught, 'alice', { imagePath: file('blank.png') });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ ok: false, quality: 0 });
    expect(r.json().reason).toMatch(/blank/);
    const png = await taught.app.inject({ method: 'GET', url: r.json().overlayUrl, headers: { cookie: taught.cookies.alice! } });
    expect(png.statusCode).toBe(200);
  });

  it('refuses a live model without registration with a coded 409; the same frame checks against a given package folder', async () => {
    const r = await check(plain, 'alice', { imagePath: file('part.png') });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ code: 'INSPECTOR_CALIBRATION_NO_REFERENCE' });
    expect(r.json().message).toMatch(/no registration/);
    const viaDir = await check(plain, 'alice', { imagePath: file('part.png'), packageDir: pkgDir });
    expect(viaDir.statusCode, viaDir.body).toBe(200);
    expect(viaDir.json().ok).toBe(true);
    const notAPackage = await check(plain, 'alice', { imagePath: file('part.png'), packageDir: dir });
    expect(notAPackage.statusCode).toBe(400);
    expect(notAPackage.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
  });

  it('needs admin; a missing image is a coded 400; no station means no live frame (503); an unknown overlay is a 404', async () => {
    expect((await check(taught, null, { imagePath: file('part.png') })).statusCode).toBe(401);
    const op = await check(taught, 'bob', { imagePath: file('part.png') });
    expect(op.statusCode).toBe(403);
    expect(op.json().code).toBe('INSPECTOR_FORBIDDEN');
    const missing = await check(taught, 'alice', { imagePath: file('nope.png') });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
    const live = await check(taught, 'alice', {});
    expect(live.statusCode).toBe(503);
    expect(live.json().code).toMatch(/^INSPECTOR_/);
    const gone = await taught.app.inject({ method: 'GET', url: '/api/calibration/reference/overlay.png?id=0123456789abcdef', headers: { cookie: taught.cookies.alice! } });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('INSPECTOR_NOT_FOUND');
  });

  it('gives the shift in mm once a plane is calibrated', async () => {
    // 80 x 60 mm seen as 400 x 300 px: 0.2 mm/px
    const plane = await taught.app.inject({ method: 'POST', url: '/api/calibration/plane', headers: { cookie: taught.cookies.alice! }, payload: {
      points: [{ x: 440, y: 362 }, { x: 840, y: 362 }, { x: 840, y: 662 }, { x: 440, y: 662 }],
      mm: [{ x: 0, y: 0 }, { x: 80, y: 0 }, { x: 80, y: 60 }, { x: 0, y: 60 }] } });
    expect(plane.statusCode, plane.body).toBe(200);
    const r = (await check(taught, 'alice', { imagePath: file('moved.png') })).json();
    expect(r.shiftMm).not.toBeNull();
    expect(r.shiftMm.dx).toBeCloseTo(r.frameShiftPx.dx * 0.2, 4);
    expect(r.shiftMm.dy).toBeCloseTo(r.frameShiftPx.dy * 0.2, 4);
    expect(Math.abs(r.shiftMm.dx)).toBeGreaterThan(5); // ~40 frame px
  });

  it('undistorts the binned frame through the station lens table before registering, as the station does', async () => {
    const before = (await check(taught, 'alice', { imagePath: file('moved.png') })).json();
    expect(before.undistorted).toBe(false);
    // a strong barrel lens for this frame size, saved as the station's calibration
    const { CalibrationStore } = await import('../calibration/calibration-file.js');
    new CalibrationStore(join(dir, 'taught-calibration')).save({ lens: {
      camera: { fx: 1400, fy: 1400, cx: 639.5, cy: 511.5, dist: [-0.25, 0.05, 0, 0, 0] }, imageSize: { width: 1280, height: 1024 },
      board: { cols: 9, rows: 6, squareMm: 5 }, rms: 0.1, views: 12, distinctViews: 12 } }, { actor: 'test' });
    const after = (await check(taught, 'alice', { imagePath: file('moved.png') })).json();
    expect(after.undistorted).toBe(true);
    // the frame was taken without that lens: undistorting it bends the part, so the fit gets worse
    expect(after.quality).toBeLessThan(before.quality);
  });
});
