/**
 * Web defences of the station's server (issue 12, item 3, without HTTPS), each a bug the
 * hostile-user pass found, over fastify.inject:
 *  - security headers: a CSP and no framing on the UI, the API and /docs; the built UI
 *    runs under that CSP (no inline script or style attribute in its page);
 *  - the live WebSocket checks its Origin;
 *  - uploads are limited to real package sizes, configurable, and the whole request is
 *    bounded before it is read.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { buildUi } from '../scripts/build-ui.js';

const health = async () => { throw new Error('unused'); };
const metrics = async () => ({ contentType: 'text/plain', body: '' });

let dir: string;
let app: FastifyInstance;
let staging: string[];
let stagingCalls = 0;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-sec-web-'));
  const uiDir = join(dir, 'ui');
  await buildUi({ outDir: uiDir });
  staging = [];
  app = await buildApp({
    logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir,
    uploads: { fileBytes: 64 << 10, files: 4, totalBytes: 160 << 10 },
    allowedOrigins: ['https://station.example'],
    view: {
      health, metrics,
      call: async <T>(method: string): Promise<T> => {
        if (method === 'models.staging') {
          stagingCalls++;
          const d = join(dir, `staging-${stagingCalls}`);
          mkdirSync(d);
          staging.push(d);
          return { dir: d } as T;
        }
        throw Object.assign(new Error(`no ${method} here`), { statusCode: 409, code: 'INSPECTOR_TEST_NO_STATION' });
      },
    },
  });
  for (const [name, role] of [['op', 'operator'], ['ml', 'ml']] as const) {
    const a = await app.review.accounts.create(name, `${name}-password-1`, role);
    tokens[name] = app.review.accounts.createToken(a.id, 't').token;
  }
}, 60_000);
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

const bearer = (u: string) => ({ authorization: `Bearer ${tokens[u]}` });

describe('security headers', () => {
  it('the UI page, the API and errors carry a strict CSP and refuse framing', async () => {
    for (const [url, headers] of [['/', {}], ['/api/auth/me', bearer('op')], ['/api/auth/me', {}], ['/api/nowhere', {}]] as const) {
      const res = await app.inject({ method: 'GET', url, headers });
      const csp = String(res.headers['content-security-policy'] ?? '');
      expect(csp, url).toMatch(/default-src 'self'/);
      expect(csp, url).toMatch(/script-src 'self'(;|$)/); // no 'unsafe-inline', no 'unsafe-eval'
      expect(csp, url).not.toMatch(/unsafe-(inline|eval)/);
      expect(csp, url).toMatch(/frame-ancestors 'none'/);
      expect(csp, url).toMatch(/object-src 'none'/);
      expect(res.headers['x-frame-options'], url).toBe('DENY');
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
      // plain HTTP for now: no HSTS, no upgrade of the UI's requests to https
      expect(res.headers['strict-transport-security'], url).toBeUndefined();
      expect(csp, url).not.toMatch(/upgrade-insecure-requests/);
    }
    const docs = await app.inject({ method: 'GET', url: '/docs/static/index.html' });
    expect(String(docs.headers['content-security-policy'])).toMatch(/frame-ancestors 'none'/);
  });

  it('the built UI needs nothing the CSP forbids: no inline script, no style attribute, no eval', () => {
    const html = readFileSync(join(dir, 'ui', 'index.html'), 'utf8');
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(m[1]).toMatch(/\bsrc=/);
      expect(m[2]!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
    const js = readdirSync(join(dir, 'ui')).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(dir, 'ui', f), 'utf8')).join('\n');
    expect(js).not.toMatch(/\beval\(|new Function\(/);
  });
});

describe('the live WebSocket checks its Origin', () => {
  it('refuses a page from another site, admits the station\'s own pages, listed origins and non-browser clients', async () => {
    const h = { ...bearer('op'), host: 'localhost' };
    for (const origin of ['http://evil.example', 'null', 'http://localhost.evil.example:80', 'http://localhost:8080', 'https://station.example.evil', 'file://']) {
      await expect(app.injectWS('/api/live', { headers: { ...h, origin } }), origin).rejects.toThrow(/403/);
    }
    for (const headers of [{ ...h, origin: 'http://localhost:80' }, { ...h, origin: 'http://localhost' }, { ...h, host: 'station:8080', origin: 'http://station:8080' },
      { ...h, origin: 'https://station.example' }, h]) {
      const ws = await app.injectWS('/api/live', { headers });
      ws.terminate();
    }
    // a plain HTTP request with a foreign Origin is not a WebSocket: not refused for it
    expect((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { ...h, origin: 'http://evil.example' } })).statusCode).toBe(200);
  });
});

/** A multipart body of the given files (name → bytes). */
function multipart(files: Array<[string, number]>): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----inspector-test-boundary';
  const parts: Buffer[] = [];
  for (const [name, size] of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(Buffer.alloc(size, 7));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('upload limits', () => {
  it('defaults are sized to real packages (not 1 GiB x 16 files), and can be configured', async () => {
    const { uploadLimits, DEFAULT_UPLOAD_LIMITS } = await import('../inspector/server/plugins/security.js');
    expect(DEFAULT_UPLOAD_LIMITS.fileBytes).toBeLessThanOrEqual(512 << 20);
    expect(DEFAULT_UPLOAD_LIMITS.totalBytes).toBeLessThan(1 << 30);
    expect(DEFAULT_UPLOAD_LIMITS.files).toBeGreaterThanOrEqual(34); // model.onnx + manifest.json + the 32 extra files a manifest may list
    expect(uploadLimits({}, { INSPECTOR_UPLOAD_MAX_FILE_MB: '8', INSPECTOR_UPLOAD_MAX_FILES: '3', INSPECTOR_UPLOAD_MAX_TOTAL_MB: '10' }))
      .toEqual({ fileBytes: 8 << 20, files: 3, totalBytes: 10 << 20 });
    expect(uploadLimits({ fileBytes: 5 }, {})).toEqual({ ...DEFAULT_UPLOAD_LIMITS, fileBytes: 5 });
    expect(app.settings.uploads).toEqual({ fileBytes: 64 << 10, files: 4, totalBytes: 160 << 10 });
  });

  it('a file over the configured size is refused as too large (coded 4xx) and nothing stays in staging', async () => {
    const { payload, headers } = multipart([['model.onnx', (64 << 10) + 1]]);
    const res = await app.inject({ method: 'POST', url: '/api/models', headers: { ...headers, ...bearer('ml') }, payload });
    // the multipart limit cuts the file: routes/models.ts answers 400 "larger than the upload limit" (or 413)
    expect([400, 413], res.body).toContain(res.statusCode);
    expect(res.json().code).toMatch(/^INSPECTOR_/);
    expect(res.json().message).toMatch(/larger than the upload limit|too large/i);
    for (const d of staging) expect(() => readdirSync(d)).toThrow(); // removed
    // the calibration image upload has the same limit
    const img = multipart([['frame.png', (64 << 10) + 1]]);
    const cal = await app.inject({ method: 'POST', url: '/api/calibration/check/upload', headers: { ...img.headers, ...bearer('op') }, payload: img.payload });
    expect(cal.statusCode, cal.body).toBe(413);
    expect(cal.json().code).toBe('INSPECTOR_REQ_FILE_TOO_LARGE');
  });

  it('more files than configured is a coded 413', async () => {
    const { payload, headers } = multipart([['a.bin', 10], ['b.bin', 10], ['c.bin', 10], ['d.bin', 10], ['e.bin', 10]]);
    const res = await app.inject({ method: 'POST', url: '/api/models', headers: { ...headers, ...bearer('ml') }, payload });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toMatch(/^INSPECTOR_/);
  });

  it('a request over the total is refused before it is read (the station is not even asked for staging)', async () => {
    const before = stagingCalls;
    const { payload, headers } = multipart([['a.bin', 60 << 10], ['b.bin', 60 << 10], ['c.bin', 60 << 10]]);
    const res = await app.inject({ method: 'POST', url: '/api/models', headers: { ...headers, ...bearer('ml') }, payload });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('INSPECTOR_UPLOAD_TOO_LARGE');
    expect(stagingCalls).toBe(before);
  });

  it('an upload cut short (no closing boundary) is a coded 400 at once, not a request left hanging', async () => {
    const boundary = '----cut-short';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="model.onnx"; filename="model.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    for (const payload of [Buffer.concat([Buffer.from(head), Buffer.alloc(100, 7), Buffer.from('\r\n')]), Buffer.concat([Buffer.from(head), Buffer.alloc(30_000, 7)])]) {
      for (const [url, user] of [['/api/models', 'ml'], ['/api/calibration/check/upload', 'op']] as const) {
        const res = await app.inject({ method: 'POST', url, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...bearer(user) }, payload });
        expect(res.statusCode, `${url} ${res.body}`).toBe(400);
        expect(res.json().code).toBe('INSPECTOR_BAD_MULTIPART');
      }
    }
  });

  it('an upload that does not say its length is a coded 411', async () => {
    const { payload, headers } = multipart([['manifest.json', 10]]);
    const res = await app.inject({ method: 'POST', url: '/api/models', headers: { ...headers, ...bearer('ml') }, payload: Readable.from([payload]) });
    expect(res.statusCode).toBe(411);
    expect(res.json().code).toBe('INSPECTOR_LENGTH_REQUIRED');
  });
});

describe('malformed input the API fuzz found (test/api-fuzz.test.ts)', () => {
  it('a number that is not finite ("Infinity", 1e400) is a coded 400, not a 500 from SQLite', async () => {
    for (const url of ['/api/exports?limit=Infinity', '/api/exports?limit=-Infinity', '/api/exports?limit=1e400']) {
      const res = await app.inject({ method: 'GET', url, headers: bearer('ml') });
      expect(res.statusCode, `${url} ${res.body}`).toBe(400);
      expect(res.json().code).toBe('INSPECTOR_BAD_REQUEST');
    }
    const body = await app.inject({ method: 'POST', url: '/api/tokens', headers: { ...bearer('ml'), 'content-type': 'application/json' }, payload: '{"name":"x","ttlDays":1e400}' });
    expect(body.statusCode).toBe(400);
    expect(body.json().code).toBe('INSPECTOR_BAD_REQUEST');
  });

  it('a malformed %-escape in the path is a coded 400', async () => {
    for (const url of ['/api/tokens/%', '/api/parts/run-1/%E0%A4%A']) {
      const res = await app.inject({ method: 'DELETE', url, headers: bearer('ml') });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().code, url).toMatch(/^INSPECTOR_/);
    }
  });
});
