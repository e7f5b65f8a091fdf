/**
 * Login, logout, who am I, and bearer tokens for yourself.
 *   POST /api/auth/login {username,password}  → session cookie (HttpOnly, SameSite=Strict, Secure)
 *   POST /api/auth/logout                      → ends the session
 *   GET  /api/auth/me                          → { name, role, via }
 *   POST /api/tokens {name, ttlDays?}          → { token } (shown once; only its hash is stored)
 * Login is rate-limited per client address.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { SESSION_COOKIE } from '../plugins/auth.js';
import { BadCredentialsError, TooManyLoginsError } from '../errors.js';
import { ErrorReply, RoleSchema, authErrors } from './schemas.js';

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
    const account = await app.review.accounts.authenticate(req.body.username, req.body.password);
    if (!account) {
      app.review.audit.record({ actor: req.body.username, action: 'auth.login-failed', target: `user:${req.body.username}`, after: { ip: req.ip } });
      throw new BadCredentialsError();
    }
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
      description: 'Create a bearer token for yourself (CLI, ML pushes). The token is shown once.',
      tags: ['auth'],
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), ttlDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })) }, { additionalProperties: false }),
      response: { 201: Type.Object({ id: Type.Integer(), name: Type.String(), token: Type.String(), expiresAt: Type.Union([Type.String(), Type.Null()]) }), ...authErrors },
    },
  }, async (req, reply) => {
    const account = app.review.accounts.byName(req.user!.name)!;
    const t = app.review.accounts.createToken(account.id, req.body.name, req.body.ttlDays ? req.body.ttlDays * 86_400_000 : undefined);
    app.audit.record({ actor: req.user!.name, action: 'token.create', target: `user:${account.username}`, before: null, after: { tokenId: t.id, name: req.body.name, expiresAtMs: t.expiresAtMs } });
    return reply.status(201).send({ id: t.id, name: req.body.name, token: t.token, expiresAt: t.expiresAtMs ? new Date(t.expiresAtMs).toISOString() : null });
  });
};
