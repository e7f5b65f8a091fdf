/**
 * The CLI's station client (inspector/cli/station-client.ts) against a real HTTPS server (buildApp
 * with a self-signed certificate from server/tls.ts) and a plain one: it trusts only a pinned
 * fingerprint or a CA file, and every failure says the URL it tried, the cause and what to do.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { loadServerTls, normalizeFingerprint, type ServerTls } from '../inspector/server/tls.js';
import { api, stationConn } from '../inspector/cli/station-client.js';
import { freePort } from '../inspector/core/free-port.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'inspector-client-'));
const view = { health: async () => ({}) as any, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
let secure: FastifyInstance;
let plain: FastifyInstance;
let tls: ServerTls;
let httpsUrl: string;
let httpUrl: string;
let token: string;

beforeAll(async () => {
  tls = (await loadServerTls({ mode: 'self-signed' }, { pkiFolder: join(dir, 'pki'), host: '127.0.0.1' }))!;
  secure = await buildApp({ view, logger: false, https: { cert: tls.cert, key: tls.key }, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'no-ui') });
  plain = await buildApp({ view, logger: false, uiDir: join(dir, 'no-ui') });
  const ml = await secure.review.accounts.create('ml-bo', 'correct horse battery', 'ml');
  token = secure.review.accounts.createToken(ml.id, 'cli').token;
  httpsUrl = await secure.listen({ host: '127.0.0.1', port: 0 });
  httpUrl = await plain.listen({ host: '127.0.0.1', port: 0 });
}, 60_000);

afterAll(async () => {
  await secure?.close();
  await plain?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('station client: trust', () => {
  it('accepts fingerprints as users paste them and refuses what is not one', () => {
    const fp = tls.fingerprint256;
    expect(normalizeFingerprint(`SHA256:${fp.toLowerCase()}`)).toBe(fp);
    expect(normalizeFingerprint(fp.replace(/:/g, ''))).toBe(fp);
    expect(() => normalizeFingerprint('AB:CD')).toThrow(/not a SHA-256 certificate fingerprint/);
  });

  it('talks to the station with the pinned fingerprint or its certificate as CA', async () => {
    expect((await api<{ name: string }>(stationConn({ url: httpsUrl, token, fingerprint: tls.fingerprint256 }), 'GET', '/api/auth/me')).name).toBe('ml-bo');
    expect((await api<{ name: string }>(stationConn({ url: httpsUrl, token, ca: tls.certFile }), 'GET', '/api/auth/me')).name).toBe('ml-bo');
  });

  it('refuses an untrusted certificate, naming the URL, the cause, the presented fingerprint and how to trust it', async () => {
    const err = await api(stationConn({ url: httpsUrl, token }), 'GET', '/api/auth/me').catch((e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'INSPECTOR_STATION_UNTRUSTED' });
    const m = (err as Error).message;
    expect(m).toContain(httpsUrl);
    expect(m).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(m).toContain(`SHA-256 ${tls.fingerprint256}`);
    expect(m).toMatch(/--fingerprint/);
    expect(m).toMatch(/--ca FILE/);
  });

  it('refuses a station whose certificate is not the pinned one', async () => {
    const wrong = 'AA:'.repeat(31) + 'AA';
    const err = await api(stationConn({ url: httpsUrl, token, fingerprint: wrong }), 'GET', '/api/auth/me').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'INSPECTOR_STATION_UNTRUSTED' });
    expect((err as Error).message).toContain(`not the pinned ${wrong}`);
    expect((err as Error).message).toContain(tls.fingerprint256);
  });
});

describe('station client: clear words', () => {
  it('says nothing listens, with the URL and ECONNREFUSED', async () => {
    const port = await freePort();
    const err = await api(stationConn({ url: `https://127.0.0.1:${port}`, token }), 'GET', '/api/models').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'INSPECTOR_STATION_UNREACHABLE' });
    expect((err as Error).message).toContain(`https://127.0.0.1:${port}`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as Error).message).toMatch(/Is the station running/);
  });

  it('says to use https:// when plain HTTP meets the TLS port, and http:// the other way round', async () => {
    const toTls = await api(stationConn({ url: httpsUrl.replace('https:', 'http:'), token }), 'GET', '/api/auth/me').catch((e: Error) => e);
    expect(toTls).toMatchObject({ code: 'INSPECTOR_STATION_UNREACHABLE' });
    expect((toTls as Error).message).toMatch(/speaks HTTPS.*Use https:\/\//);
    const toPlain = await api(stationConn({ url: httpUrl.replace('http:', 'https:'), token, fingerprint: tls.fingerprint256 }), 'GET', '/api/auth/me').catch((e: Error) => e);
    expect(toPlain).toMatchObject({ code: 'INSPECTOR_STATION_UNREACHABLE' });
    expect((toPlain as Error).message).toMatch(/plain HTTP.*Use http:\/\//);
  });

  it('says how to get a token on a 401, and that a given token was refused', async () => {
    const none = await api(stationConn({ url: httpsUrl, fingerprint: tls.fingerprint256 }), 'GET', '/api/auth/me').catch((e: Error) => e);
    expect(none).toMatchObject({ code: 'INSPECTOR_UNAUTHENTICATED', statusCode: 401 });
    expect((none as Error).message).toMatch(/No token given: pass --token \(or INSPECTOR_TOKEN\)/);
    expect((none as Error).message).toMatch(/inspector tokens create --username NAME/);
    expect((none as Error).message).toMatch(/POST https:\/\/127\.0\.0\.1:\d+\/api\/tokens/);
    const bad = await api(stationConn({ url: httpsUrl, token: 'insp_not-a-token', fingerprint: tls.fingerprint256 }), 'GET', '/api/auth/me').catch((e: Error) => e);
    expect((bad as Error).message).toMatch(/The token was refused: it expired, was revoked/);
  });

  it('the inspector command prints the code and the words, and works once pinned', async () => {
    const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'models', 'history', '--url', httpsUrl, '--token', token, ...args],
      { env: { ...process.env, INSPECTOR_FINGERPRINT: '', INSPECTOR_CA: '' } });
    const refused = await cli([]).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/^inspector: INSPECTOR_STATION_UNTRUSTED: the station at https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(refused?.stderr).toContain(tls.fingerprint256);
    // pinned: the request reaches the API (no registry behind this bare server: its coded answer, not a TLS error)
    const pinned = await cli(['--fingerprint', tls.fingerprint256]).then((r) => ({ code: 0, stderr: r.stderr }), (e: { code: number; stderr: string }) => e);
    expect(pinned.stderr).not.toMatch(/STATION_UNTRUSTED|STATION_UNREACHABLE/);
    expect(pinned.stderr).toMatch(/INSPECTOR_\w+|^$/);
  }, 60_000);
});
