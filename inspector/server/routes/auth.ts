/**
 * Login, logout, who am I, and bearer tokens for yourself.
 *   POST /api/auth/login {username,password}  → session cookie (HttpOnly, SameSite=Strict, Secure)
 *   POST /api/auth/logout                      → ends the session
 *   GET  /api/auth/me                          → { name, role, via }
 *   POST /api/tokens {name, ttlDays?}          → { token } (shown once; only its hash is stored;
 *                                                 expires after ttlDays, default settings.tokenTtlDays = 90, at most 365)
 * Login is rate-limited per client address and locked per user name after repeated
 * failures (settings.loginLockout: backoff doubling up to a maximum; 429
 * INSPECTOR_ACCOUNT_LOCKED with Retry-After, the password is not even checked).
 * Unknown names are counted and locked like known ones, so the answers say nothing
 * about which accounts exist. A failed login is audited as an attempt by `anonymous`
 * (action auth.login-failed; the name as typed is data in `after`, the target is the
 * account it names, or `login:unknown`), never as an action of the named user.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SESSION_COOKIE } from '../plugins/auth.js';
import createError from '@fastify/error';
import { BadCredentialsError, TooManyLoginsError } from '../errors.js';
import { DAY_MS, MAX_TOKEN_TTL_DAYS } from '../../review/accounts.js';
import { ErrorReply, RoleSchema, authErrors } from './schemas.js';

export const AccountLockedError = createError<[number]>(
  'INSPECTOR_ACCOUNT_LOCKED', 'Too many failed logins for this user name; try again in %d s', 429);

const Me = Type.Object({ name: Type.String(), role: RoleSchema, via: Type.Union([Type.Literal('session'), Type.Literal('token')]) });

export const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const cookieOpts = (expires?: Date) => ({
    path: '/', httpOnly: true, sameSite: 'strict' as const, secure: app.settings.cookieSecure, ...(expires ? { expires } : {}),
  });

  app.post('/api/auth/login', {
    config: {
      public: true,
      rateLimit: {
        max: app.settings.loginRateLimit.max, timeWindow: app.settings.loginRateLimit.timeWindowMs,
        // rate-limit throws what this returns: make it a coded Error for the app's error handler
        errorResponseBuilder: (_req, ctx) => new TooManyLoginsError(Math.ceil(ctx.ttl / 1000)) as unknown as object,
      },
    },
    schema: {
      description: 'Log in with username and password; sets the session cookie',
      tags: ['auth'],
      security: [],
      body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
      response: { 200: Me, 400: ErrorReply, 401: ErrorReply, 429: ErrorReply },
    },
  }, async (req, reply) => {
    const { username, password } = req.body;
    const accounts = app.review.accounts;
    const attempt = (reason: string, extra: object = {}): void => {
      const known = accounts.byName(username);
      app.review.audit.record({ actor: 'anonymous', action: 'auth.login-failed', target: known ? `user:${known.username}` : 'login:unknown',
        after: { username, ip: req.ip, reason, ...extra } });
    };
    const locked = accounts.loginLockedUntil(username, app.settings.clock());
    if (locked !== null) {
      const s = Math.max(1, Math.ceil((locked - app.settings.clock()) / 1000));
      attempt('locked', { lockedUntil: new Date(locked).toISOString() });
      void reply.header('retry-after', String(s));
      throw new AccountLockedError(s);
    }
    const account = await accounts.authenticate(username, password);
    if (!account) {
      const f = accounts.recordLoginFailure(username, app.settings.clock(), app.settings.loginLockout);
      attempt('bad-credentials', { failures: f.failures, ...(f.lockedUntilMs ? { lockedUntil: new Date(f.lockedUntilMs).toISOString() } : {}) });
      throw new BadCredentialsError();
    }
    accounts.clearLoginFailures(username);
    const session = app.review.accounts.createSession(account.id);
    void reply.setCookie(SESSION_COOKIE, session.id, cookieOpts(new Date(session.expiresAtMs)));
    return { name: account.username, role: account.role, via: 'session' as const };
  });

  app.post('/api/auth/logout', {
    config: { public: true },
    schema: { description: 'End the session (no-op without one)', tags: ['auth'], response: { 204: Type.Null() } },
  }, async (req, reply) => {
    const sid = req.cookies[SESSION_COOKIE];
    if (sid) app.review.accounts.endSession(sid);
    void reply.clearCookie(SESSION_COOKIE, cookieOpts());
    return reply.status(204).send();
  });

  app.get('/api/auth/me', {
    preHandler: app.requireRole(),
    schema: { description: 'The logged-in user', tags: ['auth'], response: { 200: Me, ...authErrors } },
  }, async (req) => ({ name: req.user!.name, role: req.user!.role, via: req.user!.via }));

  app.post('/api/tokens', {
    preHandler: app.requireRole(),
    schema: {
      description: `Create a bearer token for yourself (CLI, ML pushes). The token is shown once. It expires after ttlDays (default ${app.settings.tokenTtlDays}, at most ${MAX_TOKEN_TTL_DAYS}); revoke it with DELETE /api/tokens/{id}.`,
      tags: ['auth'],
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), ttlDays: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKEN_TTL_DAYS })) }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.Integer(), name: Type.String(), token: Type.String(), expiresAt: Type.String() }), ...authErrors },
    },
  }, async (req, reply) => {
    const account = app.review.accounts.byName(req.user!.name)!;
    const t = app.review.accounts.createToken(account.id, req.body.name, (req.body.ttlDays ?? app.settings.tokenTtlDays) * DAY_MS);
    app.audit.record({ actor: req.user!.name, action: 'token.create', target: `user:${account.username}`, before: null, after: { tokenId: t.id, name: req.body.name, expiresAtMs: t.expiresAtMs } });
    return reply.status(201).send({ id: t.id, name: req.body.name, token: t.token, expiresAt: new Date(t.expiresAtMs).toISOString() });
  });
};
