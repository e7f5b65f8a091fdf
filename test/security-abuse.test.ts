/**
 * Work that can be abused is bounded (issue 12, item 4), each a bug the hostile-user pass found:
 *  - GET /api/parts/:run/:seq/map?width=8192 rendered an 8192-wide heatmap (57 s, +240 MB on
 *    the line's cores): now at most the part's own resolution, cached, rendered in one
 *    low-priority worker thread, with a bounded queue;
 *  - POST /api/calibration/check read any file path on the station and answered differently
 *    for missing files, non-images and images: now only images the station stored (inside
 *    its images folder, or a part's saved image) or the request uploaded.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reviewFixture, RUN, type Fixture } from './helpers/review-fixture.js';

let fx: Fixture;
beforeAll(async () => { fx = await reviewFixture({ calibrationDir: undefined }); }, 60_000);
afterAll(async () => { await fx?.close(); });

const get = (url: string, user = 'op1') => fx.app.inject({ method: 'GET', url, headers: fx.auth(user) });

describe('heatmap rendering is bounded', () => {
  it('never renders wider than the part\'s own image (64 px here), whatever width is asked', async () => {
    const res = await get(`/api/parts/${RUN}/1/map?width=8192`);
    expect(res.statusCode).toBe(200);
    const meta = await sharp(res.rawPayload).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([64, 48, 4]);
    const smaller = await sharp((await get(`/api/parts/${RUN}/1/map?width=32`)).rawPayload).metadata();
    expect([smaller.width, smaller.height]).toEqual([32, 24]);
  });

  it('keeps the heatmap as the map shows it: alpha follows the value', async () => {
    const res = await get(`/api/parts/${RUN}/1/map`);
    const { data, info } = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([16, 12, 4]);
    expect(data[3]).toBe(0);
    expect(data[(16 * 12 - 1) * 4 + 3]).toBeGreaterThan(200);
  });

  it('caches what it rendered: a repeat (any width at or over the limit) is served without a render', async () => {
    const r0 = fx.app.partRender.stats.renders;
    const a = await get(`/api/parts/${RUN}/1/map?width=48`);
    const b = await get(`/api/parts/${RUN}/1/map?width=48`, 'qa1');
    expect([a.headers['x-render-cache'], b.headers['x-render-cache']]).toEqual(['miss', 'hit']);
    expect(b.rawPayload.equals(a.rawPayload)).toBe(true);
    const c = await get(`/api/parts/${RUN}/1/map?width=4000`); // bounded to 64: the 8192 render above
    expect(c.headers['x-render-cache']).toBe('hit');
    expect(fx.app.partRender.stats.renders - r0).toBe(1);
  });

  it('renders in its own worker thread, one job at a time; a flood gets coded 429s, never a 5xx', async () => {
    expect(fx.app.partRender.stats.workerThreadId).toBeGreaterThan(0);
    expect(fx.app.partRender.stats.workerThreadId).not.toBe(threadId);
    const widths = Array.from({ length: 40 }, (_, i) => 8 + i);
    const res = await Promise.all(widths.map((w) => get(`/api/parts/${RUN}/1/map?width=${w}`)));
    const codes = res.map((r) => r.statusCode);
    expect(codes.every((c) => c === 200 || c === 429)).toBe(true);
    for (const r of res.filter((x) => x.statusCode === 429)) expect(r.json().code).toBe('INSPECTOR_RENDER_BUSY');
    expect(fx.app.partRender.stats.maxQueued).toBeLessThanOrEqual(8);
    // the queue bound itself, deterministically: calls made at once beyond maxQueue are refused at once
    const { PartRenderer } = await import('../inspector/server/routes/part-render.js');
    const r = new PartRenderer({ maxQueue: 2 });
    const mapPath = join(fx.dir, 'var', 'images', RUN, 'reject', '1.map.png');
    const calls = [8, 9, 10, 11, 12].map((w) => r.heatmap(`k${w}`, mapPath, w, 'test map').then(() => 'ok', (e: { code?: string }) => e.code));
    expect(await Promise.all(calls)).toEqual(['ok', 'ok', 'INSPECTOR_RENDER_BUSY', 'INSPECTOR_RENDER_BUSY', 'INSPECTOR_RENDER_BUSY']);
    expect(r.stats).toMatchObject({ renders: 2, busy: 3, maxQueued: 2 });
    await r.close();
  });

  it('a map that is not a PNG is a coded 422, a missing one 404', async () => {
    writeFileSync(join(fx.dir, 'var', 'images', RUN, 'reject', '1.map.png'), 'not a png at all, but long enough to have a header');
    const bad = await get(`/api/parts/${RUN}/1/map?width=20`);
    expect(bad.statusCode).toBe(422);
    expect(bad.json().code).toBe('INSPECTOR_IMAGE_UNREADABLE');
    expect((await get(`/api/parts/${RUN}/3/map`)).json()).toMatchObject({ statusCode: 404, code: 'INSPECTOR_IMAGE_MISSING' });
    expect((await get(`/api/parts/${RUN}/2/map`)).statusCode).toBe(404);
  });
});

describe('calibration checks read only images the station stored or the request uploaded', () => {
  const check = (payload: object, user = 'op1') => fx.app.inject({ method: 'POST', url: '/api/calibration/check', headers: fx.auth(user), payload });

  it('measures a stored image, by its path in the images folder or by its part', async () => {
    const byPath = await check({ imagePath: `images/${RUN}/reject/1.png` });
    expect(byPath.statusCode, byPath.body).toBe(200);
    expect(byPath.json().tenengrad).toBeGreaterThan(0);
    const byPart = await check({ runId: RUN, seq: 1 });
    expect(byPart.json()).toEqual(byPath.json());
    expect((await check({ runId: RUN, seq: 99 })).statusCode).toBe(404);
    expect((await check({ runId: RUN, seq: 1, imagePath: 'images/x.png' })).statusCode).toBe(400);
  });

  it('answers one and the same refusal for files outside the folder, whether missing, not an image, or a real image', async () => {
    const outside = join(fx.dir, 'outside');
    mkdirSync(outside);
    await sharp(Buffer.alloc(64 * 48, 128), { raw: { width: 64, height: 48, channels: 1 } }).png().toFile(join(outside, 'real.png'));
    writeFileSync(join(outside, 'text.txt'), 'hello');
    const answers = [];
    for (const p of [join(outside, 'real.png'), join(outside, 'text.txt'), join(outside, 'missing.png'), '/etc/passwd', '../outside/real.png', `images/../../outside/real.png`]) {
      const r = await check({ imagePath: p });
      answers.push([r.statusCode, r.json().code]);
      expect(r.json().message).not.toMatch(/ENOENT|no such file|unsupported image|Input file/i);
    }
    expect(new Set(answers.map((a) => JSON.stringify(a)))).toEqual(new Set([JSON.stringify([400, 'INSPECTOR_PATH_OUTSIDE'])]));
  });

  it('inside the folder, a missing file, a non-image and a link out of the folder get the same answer', async () => {
    const imgs = join(fx.dir, 'var', 'images');
    writeFileSync(join(imgs, 'notes.png'), 'not an image');
    symlinkSync(join(fx.dir, 'outside', 'real.png'), join(imgs, 'link.png'));
    const answers = [];
    for (const p of ['images/missing.png', 'images/notes.png', 'images/link.png']) {
      const r = await check({ imagePath: p });
      answers.push([r.statusCode, r.json().code, r.json().message.replace(p, '<p>')]);
    }
    expect(answers[0]).toEqual([400, 'INSPECTOR_CALIBRATION_BAD_INPUT', expect.stringMatching(/not a readable image in the station's images folder/)]);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it('measures an uploaded image the same as the stored one; an upload that is not an image is a coded 400', async () => {
    const png = await sharp(join(fx.dir, 'var', 'images', RUN, 'reject', '1.png')).toBuffer();
    const body = (bytes: Buffer, name: string) => {
      const boundary = '----calib-upload';
      return {
        headers: { ...fx.auth('op1'), 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
      };
    };
    const up = await fx.app.inject({ method: 'POST', url: '/api/calibration/check/upload', ...body(png, 'frame.png') });
    expect(up.statusCode, up.body).toBe(200);
    expect(up.json()).toEqual((await check({ imagePath: `images/${RUN}/reject/1.png` })).json());
    const bad = await fx.app.inject({ method: 'POST', url: '/api/calibration/check/upload', ...body(Buffer.from('hello'), 'x.png') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INSPECTOR_CALIBRATION_BAD_INPUT');
    const json = await fx.app.inject({ method: 'POST', url: '/api/calibration/check/upload', headers: fx.auth('op1'), payload: { imagePath: '/etc/passwd' } });
    expect(json.statusCode).toBe(400);
  });
});
