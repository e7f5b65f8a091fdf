/**
 * Logins and tokens (issue 12, item 3), each a bug the hostile-user pass found:
 *  - login was limited per address only: now each user name is locked after repeated
 *    failures, with a backoff, from any address, known names and unknown alike;
 *  - a failed login wrote the attacker's chosen name into the audit trail as the actor;
 *  - bearer tokens never expired: now every token expires (90 days unless asked), old
 *    never-expiring tokens get an expiry when the database is migrated, and the CLI can
 *    list and revoke them.
 * The lockout runs on the app's clock (AppOptions.clock), which this test moves: no waiting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../inspector/server/app.js';
import { MIGRATIONS, openReviewDb } from '../inspector/review/review-db.js';
import { Accounts } from '../inspector/review/accounts.js';
import { tokensCommand } from '../inspector/cli/users-command.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof BetterSqlite3;

const DAY = 86_400_000;
const view = { health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) };
let dir: string;
let app: FastifyInstance;
let now = Date.UTC(2026, 2, 1, 8, 0, 0);
let ip = 0;
const PW = 'alice-password-1';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-sec-login-'));
  app = await buildApp({
    view, logger: false, reviewDbPath: join(dir, 'review.sqlite'), uiDir: join(dir, 'none'),
    loginRateLimit: { max: 1000, timeWindowMs: 60_000 }, // the per-address limit is not what is tested here
    loginLockout: { freeAttempts: 3, baseLockMs: 60_000, maxLockMs: 240_000, forgetAfterMs: DAY },
    clock: () => now,
  });
  await app.review.accounts.create('alice', PW, 'admin');
  await app.review.accounts.create('bob', 'bob-password-1', 'operator');
  await app.review.accounts.create('carol', 'carol-password-1', 'qa');
  await app.review.accounts.create('dave', 'dave-password-1', 'operator');
});
afterAll(async () => { await app?.close(); rmSync(dir, { recursive: true, force: true }); });

/** every attempt from a new address: the per-address limit never helps */
const login = (username: string, password: string) =>
  app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress: `10.7.${(ip >> 8) & 255}.${ip++ & 255}` });
const cookieOf = (setCookie: string | string[] | undefined) => String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0]!;

describe('per-account lockout with backoff', () => {
  it('locks a user name after repeated failures from any address; even the right password waits; the lock doubles', async () => {
    expect((await login('alice', 'guess-1')).statusCode).toBe(401);
    expect((await login('alice', 'guess-2')).statusCode).toBe(401);
    expect((await login('alice', 'guess-3')).statusCode).toBe(401); // the third failure starts a 60 s lock
    const locked = await login('alice', PW);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().code).toBe('INSPECTOR_ACCOUNT_LOCKED');
    expect(locked.headers['retry-after']).toBe('60');
    expect(locked.headers['set-cookie']).toBeUndefined();
    expect((await login('bob', 'bob-password-1')).statusCode).toBe(200); // other accounts are not affected

    now += 61_000;
    expect((await login('alice', 'guess-4')).statusCode).toBe(401); // a failure after the lock: 120 s
    expect((await login('ALICE', PW)).headers['retry-after']).toBe('120'); // names are case-insensitive, as accounts are
    now += 121_000;
    expect((await login('alice', 'guess-5')).statusCode).toBe(401); // 240 s, the maximum
    now += 241_000;
    expect((await login('alice', 'guess-6')).statusCode).toBe(401); // still 240 s
    expect((await login('alice', PW)).headers['retry-after']).toBe('240');
    now += 241_000;
    const ok = await login('alice', PW);
    expect(ok.statusCode).toBe(200); // the lock is over; success clears the count
    expect((await login('alice', 'guess-7')).statusCode).toBe(401);
    expect((await login('alice', PW)).statusCode).toBe(200);
  });

  it('treats unknown user names exactly like known ones (no account enumeration)', async () => {
    const answers = async (u: string) => {
      const out: Array<[number, string]> = [];
      for (let i = 0; i < 4; i++) { const r = await login(u, 'nope-nope-1'); out.push([r.statusCode, r.json().code]); }
      return out;
    };
    const known = await answers('bob');
    const unknown = await answers('mallory');
    expect(unknown).toEqual(known);
    expect(known.at(-1)).toEqual([429, 'INSPECTOR_ACCOUNT_LOCKED']);
    now += 10 * 60_000;
  });

  it('forgets failures after a quiet day', async () => {
    for (let i = 0; i < 2; i++) expect((await login('carol', 'wrong-wrong-1')).statusCode).toBe(401);
    now += DAY + 1000;
    for (let i = 0; i < 2; i++) expect((await login('carol', 'wrong-wrong-1')).statusCode).toBe(401);
    expect((await login('carol', 'carol-password-1')).statusCode).toBe(200); // 2 + 2 failures, a day apart: no lock
  });
});

describe('failed logins in the audit trail', () => {
  it('are attempts by anonymous, with the typed name as data, never actions of the named user', async () => {
    await login('dave', 'wrong-password-9');
    await login('<script>alert(1)</script>', 'x');
    await login('mallory', 'x');
    const rows = app.review.audit.list({ action: 'auth.login-failed', limit: 500 });
    expect(rows.length).toBeGreaterThan(10);
    expect(new Set(rows.map((r) => r.actor))).toEqual(new Set(['anonymous']));
    for (const name of ['bob', 'alice', 'dave', 'mallory', '<script>alert(1)</script>']) expect(app.review.audit.list({ actor: name, limit: 5 })).toEqual([]);
    const [m, s, b] = rows;
    expect(m).toMatchObject({ target: 'login:unknown', after: { username: 'mallory', reason: 'bad-credentials' } });
    expect(s).toMatchObject({ target: 'login:unknown', after: { username: '<script>alert(1)</script>' } });
    expect(b).toMatchObject({ target: 'user:dave', after: { username: 'dave', reason: 'bad-credentials', failures: 1 } });
    expect(typeof (b!.after as { ip: string }).ip).toBe('string');
  });
});

describe('bearer token expiry and revocation', () => {
  it('a token made without a life expires after 90 days; a longer life than 365 days is refused', async () => {
    const cookie = cookieOf((await login('dave', 'dave-password-1')).headers['set-cookie']);
    const res = await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie }, payload: { name: 'ci' } });
    expect(res.statusCode).toBe(201);
    const exp = Date.parse(res.json().expiresAt);
    expect(exp - Date.now()).toBeGreaterThan(89 * DAY);
    expect(exp - Date.now()).toBeLessThanOrEqual(90 * DAY);
    const long = await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie }, payload: { name: 'forever', ttlDays: 3650 } });
    expect(long.statusCode).toBe(400);
    expect(long.json().code).toBe('INSPECTOR_BAD_REQUEST');
    // the library default too
    const t = app.review.accounts.createToken(app.review.accounts.byName('dave')!.id, 'lib');
    expect(t.expiresAtMs).not.toBeNull();
    expect(t.expiresAtMs! - Date.now()).toBeGreaterThan(89 * DAY);
  });

  it('an expired token is refused; a revoked one too', async () => {
    const bob = app.review.accounts.byName('bob')!;
    const t = app.review.accounts.createToken(bob.id, 'short', 5 * DAY);
    const me = () => app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${t.token}` } });
    expect((await me()).statusCode).toBe(200);
    app.review.db.prepare('UPDATE tokens SET expires_at_ms = ? WHERE id = ?').run(Date.now() - 1, t.id);
    expect((await me()).statusCode).toBe(401);
    const u = app.review.accounts.createToken(bob.id, 'other');
    const del = await app.inject({ method: 'DELETE', url: `/api/tokens/${u.id}`, headers: { authorization: `Bearer ${u.token}` } });
    expect(del.statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: `Bearer ${u.token}` } })).statusCode).toBe(401);
  });

  it('migrating an old database gives its never-expiring tokens an expiry (90 days from the migration)', () => {
    const path = join(dir, 'old-review.sqlite');
    const old = new Database(path);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    old.prepare("INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES ('ml', 'ml', 'x', 0)").run();
    old.prepare("INSERT INTO tokens (account_id, name, token_hash, created_at_ms, expires_at_ms) VALUES (1, 'ci', 'h1', 0, NULL)").run();
    old.close();
    const db = openReviewDb(path);
    try {
      const r = db.prepare('SELECT expires_at_ms FROM tokens').get() as { expires_at_ms: number | null };
      expect(r.expires_at_ms).not.toBeNull();
      expect(r.expires_at_ms! - Date.now()).toBeGreaterThan(89 * DAY);
      expect(r.expires_at_ms! - Date.now()).toBeLessThanOrEqual(90 * DAY);
    } finally { db.close(); }
  });

  it('the CLI makes 90-day tokens by default, lists them and revokes one', async () => {
    const path = join(dir, 'cli-review.sqlite');
    const db = openReviewDb(path);
    const accounts = new Accounts(db);
    await accounts.create('quinn', 'quinn-password', 'ml');
    db.close();
    const run = async (args: string[]): Promise<string> => {
      const out: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
      try { await tokensCommand().exitOverride().parseAsync([...args, '--review-db', path], { from: 'user' }); } finally { spy.mockRestore(); }
      return out.join('');
    };
    const token = (await run(['create', '-u', 'quinn', '--name', 'push'])).trim();
    await expect(run(['create', '-u', 'quinn', '--ttl-days', '4000'])).rejects.toMatchObject({ code: 'INSPECTOR_BAD_REQUEST' });
    const list = await run(['list']);
    const [id, user, name, expires, state] = list.trim().split('\t');
    expect([user, name, state]).toEqual(['quinn', 'push', 'live']);
    expect(Date.parse(expires!) - Date.now()).toBeGreaterThan(89 * DAY);
    const check = () => { const d = openReviewDb(path); try { return new Accounts(d).tokenAccount(token)?.username ?? null; } finally { d.close(); } };
    expect(check()).toBe('quinn');
    expect(await run(['revoke', '--id', id!])).toMatch(/revoked token/);
    expect(check()).toBeNull();
    expect((await run(['list'])).trim().split('\t').at(-1)).toBe('revoked');
    await expect(run(['revoke', '--id', id!])).rejects.toMatchObject({ code: 'INSPECTOR_UNKNOWN_TOKEN' });
    const d = openReviewDb(path);
    try {
      expect((d.prepare("SELECT actor, action FROM audit WHERE action LIKE 'token.%' ORDER BY id").all() as Array<{ actor: string; action: string }>).map((r) => r.action))
        .toEqual(['token.create', 'token.revoke']);
    } finally { d.close(); }
  });
});
