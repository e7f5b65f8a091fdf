/**
 * The role matrix, walked over EVERY route the app registers (collected by the
 * auth plugin's onRoute hook, so routes other features add later are covered
 * too): every /api route needs a login, every mutating route refuses
 * anonymous callers (401) and each role it does not admit (403), and a
 * malformed body gets a coded 4xx, never a 5xx.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Role } from '../inspector/review/review-db.js';
import { reviewFixture, ROLES_USERS, RUN, type Fixture } from './helpers/review-fixture.js';

let fx: Fixture;
beforeAll(async () => { fx = await reviewFixture(); });
afterAll(async () => { await fx?.close(); });

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** a concrete URL for a route pattern */
const concrete = (url: string) => url
  .replace(':runId', RUN).replace(':seq', '1')
  .replace(/:[A-Za-z0-9_]+/g, 'x1').replace(/\*$/, 'x1');
const userWithRole = (role: Role) => Object.entries(ROLES_USERS).find(([, r]) => r === role)![0];

describe('role matrix over every registered route', () => {
  it('finds the routes of this feature and of the others', () => {
    const urls = fx.app.routeAccess.map((r) => `${r.method} ${r.url}`);
    expect(urls).toEqual(expect.arrayContaining(['PUT /api/parts/:runId/:seq/label', 'POST /api/review/label-bulk', 'POST /api/users', 'GET /api/audit']));
    expect(urls.length).toBeGreaterThan(15);
  });

  it('every /api route except login/logout has a role guard', () => {
    const unguarded = fx.app.routeAccess.filter((r) => r.url.startsWith('/api') && !r.public && r.roles === null);
    expect(unguarded.map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });

  it('anonymous callers get 401 with a code on every guarded route', async () => {
    for (const r of fx.app.routeAccess.filter((x) => x.roles !== null)) {
      const res = await fx.app.inject({ method: r.method as 'GET', url: concrete(r.url), payload: MUTATING.has(r.method) ? {} : undefined });
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(401);
      expect(res.json().code, `${r.method} ${r.url}`).toBe('INSPECTOR_UNAUTHENTICATED');
    }
  });

  it('each mutating route refuses every role it does not admit with 403 and a code', async () => {
    let checked = 0;
    for (const r of fx.app.routeAccess.filter((x) => MUTATING.has(x.method) && x.roles !== null && x.roles.length > 0)) {
      const refused = ROLES.filter((role) => role !== 'admin' && !r.roles!.includes(role));
      for (const role of refused) {
        const res = await fx.app.inject({ method: r.method as 'POST', url: concrete(r.url), headers: fx.auth(userWithRole(role)), payload: {} });
        expect(res.statusCode, `${role} ${r.method} ${r.url}`).toBe(403);
        expect(res.json().code).toBe('INSPECTOR_FORBIDDEN');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });

  it('reading routes admit every role', async () => {
    const reads = ['/api/parts', `/api/parts/${RUN}/1`, `/api/parts/${RUN}/1/label/history`, '/api/classes', '/api/stats', '/api/auth/me'];
    for (const url of reads) {
      for (const role of ROLES) {
        const res = await fx.app.inject({ method: 'GET', url, headers: fx.auth(userWithRole(role)) });
        expect(res.statusCode, `${role} GET ${url}`).toBe(200);
      }
    }
  });

  it('a malformed body on any mutating route is a coded 4xx for an admitted caller, never a 500', async () => {
    const mutating = fx.app.routeAccess.filter((x) => MUTATING.has(x.method) && !x.websocket);
    for (const r of mutating) {
      for (const [type, body] of [['application/json', '{"broken": '], ['application/json', '[1, 2, 3]'], ['application/json', '"just a string"']] as const) {
        const res = await fx.app.inject({ method: r.method as 'POST', url: concrete(r.url), headers: { ...fx.auth('admin1'), 'content-type': type }, payload: body });
        const what = `${r.method} ${r.url} ${body}`;
        // never an unexpected 500; a route that ignores bodies may still answer 503 (no station in this fixture)
        expect(res.statusCode, what).not.toBe(500);
        if (res.statusCode >= 400) expect(res.json().code, what).toMatch(/^INSPECTOR_/);
        if (body.startsWith('{"broken')) {
          expect(res.statusCode, what).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, what).toBeLessThan(500);
        }
      }
    }
  });
});
