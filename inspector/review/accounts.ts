/**
 * Accounts, sessions and bearer tokens. Passwords are stored as scrypt hashes
 * (node:crypto, per-password random salt, parameters kept in the hash string);
 * session ids and tokens are random 32-byte secrets of which only the SHA-256
 * is stored, so a copy of the database lets nobody log in.
 *
 * Every bearer token expires (default DEFAULT_TOKEN_TTL_DAYS, at most
 * MAX_TOKEN_TTL_DAYS) and can be revoked. Failed logins are counted per user
 * name as typed, known or not (so the lockout says nothing about which names
 * exist): from `freeAttempts` failures on, the name is locked for `baseLockMs`,
 * doubling with every further failure up to `maxLockMs`; a success clears the
 * count, and so does a quiet `forgetAfterMs`.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import type { Db, Role } from './review-db.js';
import { ROLES } from './review-db.js';

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 64 } as const;
export const SESSION_TTL_MS = 12 * 3600_000;
export const DAY_MS = 86_400_000;
/** a bearer token's life when none is asked for */
export const DEFAULT_TOKEN_TTL_DAYS = 90;
/** the longest life a bearer token may be given */
export const MAX_TOKEN_TTL_DAYS = 365;

/** Per-account login lockout (on top of the per-address rate limit of the login route). */
export interface LockoutPolicy {
  /** failures before the first lock */
  freeAttempts: number;
  /** the first lock; each further failure doubles it */
  baseLockMs: number;
  maxLockMs: number;
  /** failures older than this (since the last one) are forgotten */
  forgetAfterMs: number;
}
export const DEFAULT_LOCKOUT: LockoutPolicy = { freeAttempts: 5, baseLockMs: 30_000, maxLockMs: 15 * 60_000, forgetAfterMs: DAY_MS };
/** at most this many user names are tracked (the oldest are forgotten first) */
const MAX_TRACKED_NAMES = 10_000;

function scrypt(password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p), expected.length);
  return timingSafeEqual(key, expected);
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
export const newSecret = (prefix = ''): string => prefix + randomBytes(32).toString('base64url');
/** A random password people can type: 20 base64url characters (120 bits). */
export const randomPassword = (): string => randomBytes(15).toString('base64url');

export interface Account { id: number; username: string; role: Role; createdAtMs: number; disabled: boolean }
interface AccountRow { id: number; username: string; role: Role; password_hash: string; created_at_ms: number; disabled: number }
const toAccount = (r: AccountRow): Account => ({ id: r.id, username: r.username, role: r.role, createdAtMs: r.created_at_ms, disabled: r.disabled === 1 });

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$';
export const MIN_PASSWORD = 10;

export class AccountError extends Error {
  constructor(readonly code: 'INSPECTOR_USER_EXISTS' | 'INSPECTOR_BAD_REQUEST', message: string) { super(message); }
}

export class Accounts {
  constructor(private readonly db: Db) {}

  async create(username: string, password: string, role: Role): Promise<Account> {
    if (!new RegExp(USERNAME_PATTERN).test(username)) throw new AccountError('INSPECTOR_BAD_REQUEST', `username ${JSON.stringify(username)} must match ${USERNAME_PATTERN}`);
    if (!ROLES.includes(role)) throw new AccountError('INSPECTOR_BAD_REQUEST', `role must be one of ${ROLES.join(', ')}`);
    if (password.length < MIN_PASSWORD) throw new AccountError('INSPECTOR_BAD_REQUEST', `password must have at least ${MIN_PASSWORD} characters`);
    if (this.byName(username)) throw new AccountError('INSPECTOR_USER_EXISTS', `user ${username} already exists`);
    const hash = await hashPassword(password);
    const info = this.db.prepare('INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES (?, ?, ?, ?)')
      .run(username, role, hash, Date.now());
    return this.byId(Number(info.lastInsertRowid))!;
  }

  /** Replace a user's password (the old sessions stay valid until they expire). */
  async setPassword(username: string, password: string): Promise<void> {
    if (password.length < MIN_PASSWORD) throw new AccountError('INSPECTOR_BAD_REQUEST', `password must have at least ${MIN_PASSWORD} characters`);
    const hash = await hashPassword(password);
    this.db.prepare('UPDATE accounts SET password_hash = ? WHERE username = ?').run(hash, username);
  }

  /** Change role and/or disabled flag; returns the account before and after, or null if unknown. */
  update(username: string, patch: { role?: Role; disabled?: boolean }): { before: Account; after: Account } | null {
    const before = this.byName(username);
    if (!before) return null;
    if (patch.role !== undefined) this.db.prepare('UPDATE accounts SET role = ? WHERE id = ?').run(patch.role, before.id);
    if (patch.disabled !== undefined) {
      this.db.prepare('UPDATE accounts SET disabled = ? WHERE id = ?').run(patch.disabled ? 1 : 0, before.id);
      if (patch.disabled) this.db.prepare('DELETE FROM sessions WHERE account_id = ?').run(before.id);
    }
    return { before, after: this.byId(before.id)! };
  }

  tokens(accountId?: number): Array<{ id: number; username: string; name: string; createdAtMs: number; expiresAtMs: number | null; lastUsedMs: number | null; revokedAtMs: number | null }> {
    const rows = this.db.prepare(`SELECT t.*, a.username FROM tokens t JOIN accounts a ON a.id = t.account_id
      ${accountId === undefined ? '' : 'WHERE t.account_id = ?'} ORDER BY t.id`).all(...(accountId === undefined ? [] : [accountId])) as Array<{
        id: number; username: string; name: string; created_at_ms: number; expires_at_ms: number | null; last_used_ms: number | null; revoked_at_ms: number | null }>;
    return rows.map((r) => ({ id: r.id, username: r.username, name: r.name, createdAtMs: r.created_at_ms, expiresAtMs: r.expires_at_ms, lastUsedMs: r.last_used_ms, revokedAtMs: r.revoked_at_ms }));
  }

  /** Revoke a token (kept, marked revoked); returns whether it was live. */
  revokeToken(id: number): boolean {
    return this.db.prepare('UPDATE tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL').run(Date.now(), id).changes === 1;
  }

  byName(username: string): Account | null {
    const r = this.db.prepare('SELECT * FROM accounts WHERE username = ?').get(username) as AccountRow | undefined;
    return r ? toAccount(r) : null;
  }

  byId(id: number): Account | null {
    const r = this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(id) as AccountRow | undefined;
    return r ? toAccount(r) : null;
  }

  list(): Account[] {
    return (this.db.prepare('SELECT * FROM accounts ORDER BY id').all() as AccountRow[]).map(toAccount);
  }

  count(role?: Role): number {
    return role
      ? (this.db.prepare('SELECT count(*) AS n FROM accounts WHERE role = ?').get(role) as { n: number }).n
      : (this.db.prepare('SELECT count(*) AS n FROM accounts').get() as { n: number }).n;
  }

  /** The account for a username/password pair, or null (same work for unknown users and wrong passwords). */
  async authenticate(username: string, password: string): Promise<Account | null> {
    const r = this.db.prepare('SELECT * FROM accounts WHERE username = ?').get(username) as AccountRow | undefined;
    const ok = await verifyPassword(password, r?.password_hash ?? DUMMY_HASH);
    return r && ok && r.disabled === 0 ? toAccount(r) : null;
  }

  /** Start a session; returns the secret for the cookie (only its hash is stored). */
  createSession(accountId: number, ttlMs = SESSION_TTL_MS): { id: string; expiresAtMs: number } {
    const id = newSecret();
    const now = Date.now();
    this.db.prepare('DELETE FROM sessions WHERE expires_at_ms < ?').run(now);
    this.db.prepare('INSERT INTO sessions (id_hash, account_id, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)')
      .run(sha256(id), accountId, now, now + ttlMs);
    return { id, expiresAtMs: now + ttlMs };
  }

  sessionAccount(id: string): Account | null {
    const r = this.db.prepare(`SELECT a.* FROM sessions s JOIN accounts a ON a.id = s.account_id
      WHERE s.id_hash = ? AND s.expires_at_ms > ? AND a.disabled = 0`).get(sha256(id), Date.now()) as AccountRow | undefined;
    return r ? toAccount(r) : null;
  }

  endSession(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(sha256(id));
  }

  /** Create a bearer token for an account; returns the secret once (only its hash is stored). Every token expires. */
  createToken(accountId: number, name: string, ttlMs = DEFAULT_TOKEN_TTL_DAYS * DAY_MS): { id: number; token: string; expiresAtMs: number } {
    if (!(ttlMs > 0) || ttlMs > MAX_TOKEN_TTL_DAYS * DAY_MS) throw new AccountError('INSPECTOR_BAD_REQUEST', `a token lives between 1 ms and ${MAX_TOKEN_TTL_DAYS} days`);
    const token = newSecret('insp_');
    const now = Date.now();
    const expiresAtMs = now + ttlMs;
    const info = this.db.prepare('INSERT INTO tokens (account_id, name, token_hash, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?)')
      .run(accountId, name, sha256(token), now, expiresAtMs);
    return { id: Number(info.lastInsertRowid), token, expiresAtMs };
  }

  tokenAccount(token: string): Account | null {
    const now = Date.now();
    const r = this.db.prepare(`SELECT a.*, t.id AS token_id FROM tokens t JOIN accounts a ON a.id = t.account_id
      WHERE t.token_hash = ? AND t.revoked_at_ms IS NULL AND t.expires_at_ms IS NOT NULL AND t.expires_at_ms > ? AND a.disabled = 0`)
      .get(sha256(token), now) as (AccountRow & { token_id: number }) | undefined;
    if (!r) return null;
    this.db.prepare('UPDATE tokens SET last_used_ms = ? WHERE id = ?').run(now, r.token_id);
    return toAccount(r);
  }

  // ---------------------------------------------------------------- login lockout

  /** Until when logins as this name are refused (epoch ms), or null if they are not. */
  loginLockedUntil(username: string, now: number): number | null {
    const r = this.db.prepare('SELECT locked_until_ms FROM login_failures WHERE username = ?').get(username) as { locked_until_ms: number } | undefined;
    return r && r.locked_until_ms > now ? r.locked_until_ms : null;
  }

  /** Count a failed login for this name (known or not); returns the count and the lock it starts, if any. */
  recordLoginFailure(username: string, now: number, policy: LockoutPolicy): { failures: number; lockedUntilMs: number | null } {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM login_failures WHERE last_failure_ms < ? AND locked_until_ms <= ?').run(now - policy.forgetAfterMs, now);
      const prev = this.db.prepare('SELECT failures, last_failure_ms FROM login_failures WHERE username = ?').get(username) as { failures: number; last_failure_ms: number } | undefined;
      const failures = (prev && now - prev.last_failure_ms <= policy.forgetAfterMs ? prev.failures : 0) + 1;
      const over = failures - policy.freeAttempts;
      const lockedUntilMs = over >= 0 ? now + Math.min(policy.maxLockMs, policy.baseLockMs * 2 ** Math.min(over, 30)) : null;
      this.db.prepare(`INSERT INTO login_failures (username, failures, last_failure_ms, locked_until_ms) VALUES (?, ?, ?, ?)
        ON CONFLICT(username) DO UPDATE SET failures = excluded.failures, last_failure_ms = excluded.last_failure_ms, locked_until_ms = excluded.locked_until_ms`)
        .run(username, failures, now, lockedUntilMs ?? 0);
      const n = (this.db.prepare('SELECT count(*) AS n FROM login_failures').get() as { n: number }).n;
      if (n > MAX_TRACKED_NAMES) {
        this.db.prepare(`DELETE FROM login_failures WHERE username IN (SELECT username FROM login_failures WHERE locked_until_ms <= ?
          ORDER BY last_failure_ms LIMIT ?)`).run(now, n - MAX_TRACKED_NAMES);
      }
      return { failures, lockedUntilMs };
    })();
  }

  /** A successful login clears the name's failures. */
  clearLoginFailures(username: string): void {
    this.db.prepare('DELETE FROM login_failures WHERE username = ?').run(username);
  }
}

// a fixed hash so that an unknown username costs one scrypt, like a wrong password
const DUMMY_HASH = 'scrypt$16384$8$AAAAAAAAAAAAAAAAAAAAAA$' + Buffer.alloc(64).toString('base64url');
