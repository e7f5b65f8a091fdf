/**
 * HTTPS of the station's server (server/tls.ts, the server worker through ServerHost as start-server.ts
 * starts it): a self-signed certificate made at the first start and kept, HTTPS serving the API,
 * plain HTTP refused on the same port, the same fingerprint after a restart, Secure session cookies,
 * the live WebSocket over wss, and the CLI's client trusting the station only by pin or CA.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { ServerHost } from '../inspector/server/server-host.js';
import { loadServerTls, describeServerTls, type ServerTls } from '../inspector/server/tls.js';
import type { HealthReport } from '../inspector/server/station-view.js';
import { openReviewDb } from '../inspector/review/review-db.js';
import { Accounts } from '../inspector/review/accounts.js';
import { api, stationConn } from '../inspector/cli/station-client.js';

type WsClient = { on(ev: string, fn: (...a: any[]) => void): void; close(): void };
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string, opts?: Record<string, unknown>) => WsClient;

const dir = mkdtempSync(join(tmpdir(), 'inspector-https-'));
const pki = join(dir, 'pki-station');
const reviewDbPath = join(dir, 'review.sqlite');
const health = { status: 'up', station: 'https-test', uptimeS: 1, parts: 0 } as unknown as HealthReport;
let host: ServerHost | null = null;
let tlsInfo: ServerTls;
let base: string;
let token: string;

/** As start-server.ts does: the certificate first, then the worker serving it. */
async function startServer(port = 0): Promise<ServerHost> {
  tlsInfo = (await loadServerTls({ mode: 'self-signed' }, { pkiFolder: pki, host: '127.0.0.1' }))!;
  const h = await ServerHost.start({
    host: '127.0.0.1', port, tls: { cert: tlsInfo.cert, key: tlsInfo.key },
    app: { reviewDbPath, uiDir: join(dir, 'no-ui'), cookieSecure: true },
  }, {
    health: async () => health,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'inspector_up 1\n' }),
    'models.list': async () => ({ models: [], live: null, shadow: null, previous: [] }),
  }, logger.child({ test: 'https' }));
  h.tls = { fingerprint256: tlsInfo.fingerprint256, source: tlsInfo.source, certFile: tlsInfo.certFile };
  return h;
}

/** A raw request with node's http(s), so the test sees exactly what a client gets. */
function raw(url: string, opts: https.RequestOptions & { body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, opts, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

beforeAll(async () => {
  const db = openReviewDb(reviewDbPath);
  const accounts = new Accounts(db);
  const ml = await accounts.create('ml-ann', 'correct horse battery', 'ml');
  token = accounts.createToken(ml.id, 'cli').token;
  db.close();
  host = await startServer();
  base = host.address;
}, 60_000);

afterAll(async () => {
  await host?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS on the station server', () => {
  it('makes a self-signed certificate for loopback and keeps it under the PKI folder, key 0600', () => {
    expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(tlsInfo.created).toMatch(/first start/);
    expect(tlsInfo.certFile).toBe(join(pki, 'https', 'cert.pem'));
    expect(tlsInfo.subjectAltName).toContain('DNS:localhost');
    expect(tlsInfo.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(readFileSync(join(pki, 'https', 'cert.pem'), 'utf8')).toBe(tlsInfo.cert);
    expect(readFileSync(join(pki, 'https', 'key.pem'), 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
    const { statSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
    expect(statSync(join(pki, 'https', 'key.pem')).mode & 0o077).toBe(0);
    expect(describeServerTls('self-signed', tlsInfo.fingerprint256)).toContain(tlsInfo.fingerprint256);
    expect(describeServerTls('off')).toMatch(/HTTP only .*server\.tls\.mode off/);
  });

  it('serves the API over HTTPS to a client that trusts the certificate, and nothing to one that does not', async () => {
    const ok = await raw(`${base}/metrics`, { ca: tlsInfo.cert });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('inspector_up 1');
    const me = await raw(`${base}/api/auth/me`, { ca: tlsInfo.cert, headers: { authorization: `Bearer ${token}` } });
    expect(JSON.parse(me.body).name).toBe('ml-ann');
    await expect(raw(`${base}/metrics`)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('gives plain HTTP on the same port no API answer', async () => {
    const plain = base.replace('https:', 'http:');
    const got = await raw(`${plain}/api/models`, { headers: { authorization: `Bearer ${token}` } })
      .then((r) => ({ status: r.status, body: r.body }), (err: Error & { code?: string }) => ({ error: err.code ?? err.message }));
    // the TLS server either drops the connection or answers a bare 400: never the API
    if ('status' in got) {
      expect(got.status).toBe(400);
      expect(got.body).not.toContain('models');
    } else {
      expect(got.error).toMatch(/ECONNRESET|EPIPE|socket hang up/);
    }
  });

  it('sets the session cookie Secure', async () => {
    const r = await raw(`${base}/api/auth/login`, {
      ca: tlsInfo.cert, method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'ml-ann', password: 'correct horse battery' }),
    });
    expect(r.status).toBe(200);
    const cookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []).find((c) => c.startsWith('inspector_session='));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/;\s*Secure/i);
    expect(cookie).toMatch(/HttpOnly/i);
  });

  it('carries the live WebSocket over wss', async () => {
    const msg = await new Promise<any>((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('https:', 'wss:')}/api/live`, { ca: tlsInfo.cert, headers: { authorization: `Bearer ${token}` } });
      ws.on('message', (d: Buffer) => { ws.close(); resolve(JSON.parse(d.toString())); });
      ws.on('error', reject);
      ws.on('unexpected-response', (_req: unknown, res: { statusCode: number }) => reject(new Error(`HTTP ${res.statusCode}`)));
      // a fresh hub has nothing to replay: the first message is the health the host posts
      ws.on('open', () => host!.post({ type: 'health', report: health } as any));
    });
    expect(msg.type).toBe('health');
  });

  it('lets the CLI client in by pinned fingerprint or CA file, and refuses it with neither', async () => {
    const pinned = stationConn({ url: base, token, fingerprint: `SHA256:${tlsInfo.fingerprint256.toLowerCase()}` });
    expect(await api<{ models: unknown[] }>(pinned, 'GET', '/api/models')).toEqual({ models: [], live: null, shadow: null, previous: [] });
    const byCa = stationConn({ url: base, token, ca: tlsInfo.certFile });
    expect((await api<{ name: string }>(byCa, 'GET', '/api/auth/me')).name).toBe('ml-ann');
    await expect(api(stationConn({ url: base, token }), 'GET', '/api/models')).rejects.toMatchObject({ code: 'INSPECTOR_STATION_UNTRUSTED' });
  });

  it('keeps the certificate across a restart: same fingerprint on the same port', async () => {
    const before = tlsInfo.fingerprint256;
    const port = Number(new URL(base).port);
    await host!.close();
    host = null;
    host = await startServer(port);
    expect(tlsInfo.created).toBeNull();
    expect(tlsInfo.fingerprint256).toBe(before);
    const pinned = stationConn({ url: host.address, token, fingerprint: before });
    expect((await api<{ name: string }>(pinned, 'GET', '/api/auth/me')).name).toBe('ml-ann');
  }, 60_000);

  it('makes a new certificate when the kept one no longer names the configured host', async () => {
    const other = await loadServerTls({ mode: 'self-signed' }, { pkiFolder: pki, host: 'station-7.plant.example' });
    expect(other!.created).toMatch(/does not name the configured host station-7\.plant\.example/);
    expect(other!.fingerprint256).not.toBe(tlsInfo.fingerprint256);
    expect(other!.subjectAltName).toContain('DNS:station-7.plant.example');
  });

  it("refuses 'files' without its files, and an off-mode config loads nothing", async () => {
    await expect(loadServerTls({ mode: 'files' }, { pkiFolder: pki, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'INSPECTOR_CONFIG_INVALID' });
    await expect(loadServerTls({ mode: 'files', cert: join(dir, 'nope.pem'), key: join(dir, 'nope.key') }, { pkiFolder: pki, host: '127.0.0.1' }))
      .rejects.toMatchObject({ code: 'INSPECTOR_TLS_INVALID' });
    expect(await loadServerTls({ mode: 'off' }, { pkiFolder: pki, host: '127.0.0.1' })).toBeNull();
    const files = await loadServerTls({ mode: 'files', cert: join(pki, 'https', 'cert.pem'), key: join(pki, 'https', 'key.pem') }, { pkiFolder: pki, host: '127.0.0.1' });
    expect(files!.source).toBe('files');
  });
});
