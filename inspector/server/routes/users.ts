/**
 * Accounts (admin only): list and create.
 *   GET  /api/users
 *   POST /api/users {username, password, role}
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AccountError, MIN_PASSWORD, USERNAME_PATTERN } from '../../review/accounts.js';
import { BadRequestError, NotFoundError, UserExistsError } from '../errors.js';
import { RoleSchema, authErrors, ErrorReply } from './schemas.js';

const UserOut = Type.Object({ name: Type.String(), role: RoleSchema, createdAt: Type.String(), disabled: Type.Boolean() });

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/users', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'All accounts', tags: ['users'], response: { 200: Type.Array(UserOut), ...authErrors } },
  }, async () => app.review.accounts.list().map((a) => ({ name: a.username, role: a.role, createdAt: new Date(a.createdAtMs).toISOString(), disabled: a.disabled })));

  app.post('/api/users', {
    preHandler: app.requireRole('admin'),
    schema: {
      description: 'Create an account',
      tags: ['users'],
      body: Type.Object({
        username: Type.String({ pattern: USERNAME_PATTERN }),
        password: Type.String({ minLength: MIN_PASSWORD, maxLength: 1024 }),
        role: RoleSchema,
      }, { additionalProperties: false }),
      response: { 201: UserOut, 409: ErrorReply, ...authErrors },
    },
  }, async (req, reply) => {
    try {
      const a = await app.review.accounts.create(req.body.username, req.body.password, req.body.role);
      app.audit.record({ actor: req.user!.name, action: 'user.create', target: `user:${a.username}`, before: null, after: { name: a.username, role: a.role } });
      return reply.status(201).send({ name: a.username, role: a.role, createdAt: new Date(a.createdAtMs).toISOString(), disabled: a.disabled });
    } catch (err) {
      if (err instanceof AccountError) throw err.code === 'INSPECTOR_USER_EXISTS' ? new UserExistsError(req.body.username) : new BadRequestError(err.message);
      throw err;
    }
  });
};

const TokenOut = Type.Object({
  id: Type.Integer(), user: Type.String(), name: Type.String(), createdAt: Type.String(),
  expiresAt: Type.Union([Type.String(), Type.Null()]), lastUsedAt: Type.Union([Type.String(), Type.Null()]), revoked: Type.Boolean(),
});
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Account changes (admin) and token management (yours; admin: everyone's). */
export const accountAdminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.patch('/api/users/:username', {
    preHandler: app.requireRole('admin'),
    schema: {
      description: 'Change a role or disable/enable an account (disabling ends its sessions)',
      tags: ['users'],
      params: Type.Object({ username: Type.String({ pattern: USERNAME_PATTERN }) }),
      body: Type.Object({ role: Type.Optional(RoleSchema), disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: UserOut, 404: ErrorReply, ...authErrors },
    },
  }, async (req) => {
    if (req.params.username === req.user!.name && (req.body.disabled || (req.body.role && req.body.role !== 'admin'))) {
      throw new BadRequestError('an admin cannot disable or demote themselves');
    }
    const r = app.review.db.transaction(() => {
      const changed = app.review.accounts.update(req.params.username, req.body);
      if (changed) app.audit.record({ actor: req.user!.name, action: 'user.update', target: `user:${changed.after.username}`,
        before: { role: changed.before.role, disabled: changed.before.disabled }, after: { role: changed.after.role, disabled: changed.after.disabled } });
      return changed;
    })();
    if (!r) throw new NotFoundError(`user ${req.params.username}`);
    return { name: r.after.username, role: r.after.role, createdAt: new Date(r.after.createdAtMs).toISOString(), disabled: r.after.disabled };
  });

  app.get('/api/tokens', {
    preHandler: app.requireRole(),
    schema: { description: 'Your tokens (admin: all); secrets are never shown again', tags: ['auth'], response: { 200: Type.Array(TokenOut), ...authErrors } },
  }, async (req) => {
    const me = app.review.accounts.byName(req.user!.name)!;
    return app.review.accounts.tokens(req.user!.role === 'admin' ? undefined : me.id).map((t) => ({
      id: t.id, user: t.username, name: t.name, createdAt: new Date(t.createdAtMs).toISOString(),
      expiresAt: iso(t.expiresAtMs), lastUsedAt: iso(t.lastUsedMs), revoked: t.revokedAtMs !== null,
    }));
  });

  app.delete('/api/tokens/:id', {
    preHandler: app.requireRole(),
    schema: { description: 'Revoke one of your tokens (admin: anyone\'s)', tags: ['auth'], params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 204: Type.Null(), 404: ErrorReply, ...authErrors } },
  }, async (req, reply) => {
    const me = app.review.accounts.byName(req.user!.name)!;
    const t = app.review.accounts.tokens(req.user!.role === 'admin' ? undefined : me.id).find((x) => x.id === req.params.id);
    if (!t || t.revokedAtMs !== null) throw new NotFoundError(`token ${req.params.id}`);
    app.review.accounts.revokeToken(t.id);
    app.audit.record({ actor: req.user!.name, action: 'token.revoke', target: `user:${t.username}`, before: { tokenId: t.id, name: t.name, revoked: false }, after: { tokenId: t.id, revoked: true } });
    return reply.status(204).send();
  });
};
