/**
 * Who is asking: a session cookie (browser) or `Authorization: Bearer <token>`
 * (CLI, the ML team's pushes). Sets `request.user` on every request and gives
 * routes `app.requireRole(...roles)`, a preHandler that answers 401
 * (INSPECTOR_UNAUTHENTICATED) to anonymous callers and 403 (INSPECTOR_FORBIDDEN)
 * to the wrong role. `admin` passes every role check; `requireRole()` with no
 * roles admits any logged-in user (reading routes).
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, RouteOptions, preHandlerAsyncHookHandler } from 'fastify';
import type { Accounts } from '../../review/accounts.js';
import type { Role } from '../../review/review-db.js';
import { ForbiddenError, UnauthenticatedError } from '../errors.js';

export type { Role } from '../../review/review-db.js';
export interface RequestUser { name: string; role: Role; via: 'session' | 'token' }

export const SESSION_COOKIE = 'inspector_session';

/** A preHandler made by requireRole carries the roles it admits (the role-matrix test reads them). */
export type RoleGuard = preHandlerAsyncHookHandler & { inspectorRoles: readonly Role[] };

/** One registered route and who may call it (collected by an onRoute hook). */
export interface RouteAccess {
  method: string;
  url: string;
  /** roles of its guard ([] = any logged-in user); null = no guard */
  roles: readonly Role[] | null;
  public: boolean;
  websocket: boolean;
  /** declared a schema (TypeBox) */
  schema: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    requireRole(...roles: Role[]): RoleGuard;
    /** every route registered after the app plugin, with its guard's roles */
    routeAccess: RouteAccess[];
  }
  interface FastifyRequest {
    user: RequestUser | null;
    /** why a presented credential was refused (for the 401 message) */
    authProblem: string | null;
  }
  interface FastifyContextConfig {
    /** a route anyone may call (login); the role-matrix test skips it */
    public?: boolean;
  }
}

export function isRoleGuard(fn: unknown): fn is RoleGuard {
  return typeof fn === 'function' && Array.isArray((fn as Partial<RoleGuard>).inspectorRoles);
}

export const authPlugin = fp<{ accounts: Accounts }>(async (app, opts) => {
  const { accounts } = opts;
  app.decorateRequest('user', null);
  app.decorateRequest('authProblem', null);

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const account = m ? accounts.tokenAccount(m[1]!) : null;
      if (account) req.user = { name: account.username, role: account.role, via: 'token' };
      else req.authProblem = m ? 'the bearer token is unknown, revoked or expired' : 'the Authorization header is not "Bearer <token>"';
      return;
    }
    const sid = req.cookies?.[SESSION_COOKIE];
    if (sid) {
      const account = accounts.sessionAccount(sid);
      if (account) req.user = { name: account.username, role: account.role, via: 'session' };
      else req.authProblem = 'the session has expired or was ended';
    }
  });

  // A guard given as a preHandler also runs at onRequest (global onRequest hooks, which set
  // request.user, run first): the caller is checked before the body is parsed or validated, so
  // anonymous or wrong-role calls get 401/403 whatever they send, and nobody streams an upload
  // they may not make.
  const routeAccess: RouteAccess[] = [];
  app.decorate('routeAccess', routeAccess);
  app.addHook('onRoute', (route: RouteOptions) => {
    const pre = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    const guards = pre.filter(isRoleGuard);
    if (guards.length > 0) {
      route.preHandler = pre.filter((h) => !isRoleGuard(h));
      const on = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
      route.onRequest = [...guards, ...on] as typeof route.onRequest;
    }
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      routeAccess.push({
        method, url: route.url, roles: guards.length ? guards.flatMap((g) => g.inspectorRoles) : null,
        public: (route.config as { public?: boolean } | undefined)?.public === true,
        websocket: (route as { websocket?: boolean }).websocket === true,
        schema: route.schema !== undefined,
      });
    }
  });

  app.decorate('requireRole', (...roles: Role[]): RoleGuard => {
    const guard = async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
      const user = req.user;
      if (!user) throw new UnauthenticatedError(req.authProblem ?? 'log in or send a bearer token');
      if (roles.length > 0 && user.role !== 'admin' && !roles.includes(user.role)) {
        throw new ForbiddenError(user.role, roles.join(' or '));
      }
    };
    return Object.assign(guard, { inspectorRoles: Object.freeze([...roles]) });
  });
}, { name: 'inspector-auth', dependencies: ['@fastify/cookie'] });
