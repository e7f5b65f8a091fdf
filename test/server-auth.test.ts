/**
 * Accounts, sessions and tokens over fastify.inject with a real review
 * database file: login/logout/me, what is stored (scrypt hashes and token
 * hashes, never secrets), cookie flags, bearer tokens, login rate limiting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { verifyPassword } from '../inspector/review/accounts.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof BetterSqlite3;

const view = { health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
let dir: string;
let app: FastifyInstance;
let dbPath: string;
const PW = 'correct horse battery';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-auth-'));
  dbPath = join(dir, 'review.sqlite');
  app = await buildApp({ view, logger: false, reviewDbPath: dbPath, loginRateLimit: { max: 5, timeWindowMs: 60_000 }, uiDir: join(dir, 'none') });
  await app.review.accounts.create('alice', PW, 'admin');
  await app.review.accounts.create('bob', 'bob-password-1', 'operator');
});
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

const login = (username: string, password: string, ip = '10.0.0.1') =>
  app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress: ip });
const cookieOf = (setCookie: string | string[] | undefined) => String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0]!;

describe('sessions', () => {
  it('logs in with a Secure, HttpOnly, SameSite=Strict cookie; me; logout ends the session on the server', async () => {
    const res = await login('alice', PW);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'alice', role: 'admin', via: 'session' });
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^inspector_session=[A-Za-z0-9_-]{40,};/);
    for (const flag of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) expect(set).toContain(flag);
    const cookie = cookieOf(res.headers['set-cookie']);
    const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });
    expect(me.json()).toEqual({ name: 'alice', role: 'admin', via: 'session' });

    const out = await app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/inspector_session=;/);
    // the old cookie value is dead even if a client keeps sending it
    const again = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });
    expect(again.statusCode).toBe(401);
    expect(again.json().code).toBe('INSPECTOR_UNAUTHENTICATED');
  });

  it('refuses wrong passwords and unknown users alike, with a code and an audit row', async () => {
    for (const [u, p] of [['alice', 'wrong-password'], ['mallory', PW]] as const) {
      const res = await login(u, p, '10.0.0.2');
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('INSPECTOR_BAD_CREDENTIALS');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // audited as attempts by anonymous; the typed name is data, not the actor (security-login.test.ts)
    const failed = app.review.audit.list({ action: 'auth.login-failed', limit: 10 });
    expect(failed.map((a) => a.actor)).toEqual(['anonymous', 'anonymous']);
    expect(failed.map((a) => (a.after as { username: string }).username).sort()).toEqual(['alice', 'mallory']);
  });

  it('stores scrypt hashes and hashes of session ids, never the secrets', async () => {
    const res = await login('bob', 'bob-password-1', '10.0.0.3');
    const sid = cookieOf(res.headers['set-cookie']).split('=')[1]!;
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT username, password_hash FROM accounts').all() as Array<{ username: string; password_hash: string }>;
      for (const r of rows) {
        expect(r.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{86}$/);
        expect(r.password_hash).not.toContain(r.username === 'alice' ? PW : 'bob-password-1');
      }
      expect(await verifyPassword(PW, rows.find((r) => r.username === 'alice')!.password_hash)).toBe(true);
      expect(await verifyPassword('bob-password-1', rows.find((r) => r.username === 'alice')!.password_hash)).toBe(false);
      const sessions = db.prepare('SELECT id_hash FROM sessions').all() as Array<{ id_hash: string }>;
      expect(sessions.length).toBeGreaterThan(0);
      expect(sessions.some((s) => s.id_hash === sid)).toBe(false);
      expect(sessions.every((s) => /^[0-9a-f]{64}$/.test(s.id_hash))).toBe(true);
    } finally { db.close(); }
  });

  it('rate-limits login attempts per client address with a coded 429', async () => {
    const ip = '10.9.9.9';
    const codes: number[] = [];
    // a different name each time: the per-account lockout (security-login.test.ts) is not what is tested here
    for (let i = 0; i < 7; i++) codes.push((await login(`guess-user-${i}`, 'guess-' + i, ip)).statusCode);
    expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(codes.slice(5)).toEqual([429, 429]);
    const blocked = await login('alice', PW, ip); // even the right password waits
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().code).toBe('INSPECTOR_TOO_MANY_LOGINS');
    expect((await login('alice', PW, '10.9.9.10')).statusCode).toBe(200); // other clients are not affected
  });

  it('rejects malformed login bodies with a code', async () => {
    for (const payload of [{}, { username: 'alice' }, { username: '', password: 'x' }, { username: 'a', password: { nested: 1 } }, { username: 'x'.repeat(65), password: 'b' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload, remoteAddress: '10.1.1.1' });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().code).toBe('INSPECTOR_BAD_REQUEST');
    }
  });
});

describe('bearer tokens', () => {
  it('creates a token for yourself, shown once and stored as a hash; it authenticates; bad tokens are 401', async () => {
    const cookie = cookieOf((await login('bob', 'bob-password-1', '10.0.0.4')).headers['set-cookie']);
    const res = await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie }, payload: { name: 'cli', ttlDays: 30 } });
    expect(res.statusCode).toBe(201);
    const { token, expiresAt } = res.json();
    expect(token).toMatch(/^insp_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toEqual({ name: 'bob', role: 'operator', via: 'token' });
    const db = new Database(dbPath, { readonly: true });
    try {
      const hashes = (db.prepare('SELECT token_hash FROM tokens').all() as Array<{ token_hash: string }>).map((r) => r.token_hash);
      expect(hashes).not.toContain(token);
      expect(hashes.every((h) => /^[0-9a-f]{64}$/.test(h))).toBe(true);
    } finally { db.close(); }
    // an operator's token does not make it an admin
    const users = await app.inject({ method: 'GET', url: '/api/users', headers: { authorization: `Bearer ${token}` } });
    expect(users.statusCode).toBe(403);
    expect(users.json().code).toBe('INSPECTOR_FORBIDDEN');
    for (const authorization of [`Bearer ${token}x`, 'Bearer ', `Basic ${token}`, token]) {
      const bad = await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization } });
      expect(bad.statusCode, authorization).toBe(401);
      expect(bad.json().code).toBe('INSPECTOR_UNAUTHENTICATED');
    }
  });
});

describe('users (admin)', () => {
  it('creates accounts, refuses duplicates and weak input, records who did it', async () => {
    const cookie = cookieOf((await login('alice', PW, '10.0.0.5')).headers['set-cookie']);
    const add = (payload: object) => app.inject({ method: 'POST', url: '/api/users', headers: { cookie }, payload });
    let res = await add({ username: 'carol', password: 'carol-password', role: 'qa' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: 'carol', role: 'qa' });
    res = await add({ username: 'CAROL', password: 'carol-password', role: 'qa' });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('INSPECTOR_USER_EXISTS');
    for (const bad of [{ username: 'dave', password: 'short', role: 'qa' }, { username: 'd ave', password: 'long-enough-pw', role: 'qa' }, { username: 'dave', password: 'long-enough-pw', role: 'root' }]) {
      res = await add(bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json().code).toBe('INSPECTOR_BAD_REQUEST');
    }
    const list = await app.inject({ method: 'GET', url: '/api/users', headers: { cookie } });
    expect(list.json().map((u: { name: string }) => u.name)).toEqual(['alice', 'bob', 'carol']);
    expect(app.review.audit.list({ action: 'user.create', limit: 5 })).toMatchObject([{ actor: 'alice', target: 'user:carol', before: null, after: { name: 'carol', role: 'qa' } }]);
  });
});

describe('account changes and token revocation', () => {
  it('disables an account (its sessions end), changes roles with audit, revokes tokens', async () => {
    const admin = cookieOf((await login('alice', PW, '10.0.0.6')).headers['set-cookie']);
    await app.review.accounts.create('erin', 'erin-password', 'qa');
    const erin = cookieOf((await login('erin', 'erin-password', '10.0.0.7')).headers['set-cookie']);
    const tok = (await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie: erin }, payload: { name: 'laptop' } })).json();
    const asErin = { authorization: `Bearer ${tok.token}` };
    expect((await app.inject({ method: 'GET', url: '/api/tokens', headers: asErin })).json().map((t: { name: string }) => t.name)).toEqual(['laptop']);

    let res = await app.inject({ method: 'PATCH', url: '/api/users/erin', headers: { cookie: admin }, payload: { role: 'ml' } });
    expect(res.json()).toMatchObject({ name: 'erin', role: 'ml', disabled: false });
    expect((await app.inject({ method: 'GET', url: '/api/auth/me', headers: asErin })).json().role).toBe('ml');
    expect(app.review.audit.list({ action: 'user.update', limit: 1 })).toMatchObject([{ actor: 'alice', target: 'user:erin', before: { role: 'qa' }, after: { role: 'ml' } }]);

    res = await app.inject({ method: 'DELETE', url: `/api/tokens/${tok.id}`, headers: asErin });
    expect(res.statusCode).toBe(204);
    res = await app.inject({ method: 'GET', url: '/api/auth/me', headers: asErin });
    expect(res.statusCode).toBe(401);
    expect((await app.inject({ method: 'DELETE', url: `/api/tokens/${tok.id}`, headers: { cookie: erin } })).statusCode).toBe(404);

    res = await app.inject({ method: 'PATCH', url: '/api/users/erin', headers: { cookie: admin }, payload: { disabled: true } });
    expect(res.json().disabled).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: erin } })).statusCode).toBe(401);
    expect((await login('erin', 'erin-password', '10.0.0.8')).statusCode).toBe(401);

    for (const [url, payload, status] of [['/api/users/alice', { disabled: true }, 400], ['/api/users/nobody', { role: 'qa' }, 404], ['/api/users/erin', {}, 400]] as const) {
      res = await app.inject({ method: 'PATCH', url, headers: { cookie: admin }, payload });
      expect(res.statusCode, url).toBe(status);
      expect(res.json().code).toMatch(/^INSPECTOR_/);
    }
  });
});
