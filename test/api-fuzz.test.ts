/**
 * OpenAPI-driven fuzz of every route with every caller (issue 12, item 5).
 *
 * The app is built as the station builds it (fastify, a real review database and a real
 * results database with images in a temp folder, the calibration folder, users of every
 * role), with a stub station behind `view.call` that answers the RPC methods the routes
 * use the way the station does (coded errors included), so no route answers 503 for
 * want of a station. The OpenAPI document the app generates (app.swagger()) lists the
 * operations; for each one and each caller (anonymous, operator, qa, ml, admin) a bounded,
 * deterministic set of requests goes through fastify.inject (no network):
 *  - a valid request (values derived from the schemas, a few named examples that hit data);
 *  - boundary and malformed path parameters, query parameters and bodies: missing and extra
 *    fields, wrong types, huge and negative numbers, long strings, path traversal, unicode,
 *    NUL bytes, empty and broken bodies, deep nesting, an over-limit body, wrong content
 *    types, multipart bodies (well formed, garbage, unterminated, many files, traversal
 *    names) on every write without a JSON body;
 *  - header variants (foreign Origin and Host, odd Accept, junk cookies; for anonymous
 *    callers forged and malformed credentials);
 *  - random values from fast-check (fixed seed).
 * It fails on any 5xx, any request that throws, any uncaught exception or unhandled
 * rejection meanwhile, any 4xx without an INSPECTOR_* code, and any 2xx for a caller the
 * route does not admit (the roles come from the auth plugin: app.routeAccess, i.e. the
 * route's requireRole guard; public routes and the open /health and /metrics admit all).
 * It prints how many requests it sent.
 * The requests: helpers/api-fuzz-cases.ts, from schema values in helpers/api-fuzz-values.ts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { RouteAccess } from '../inspector/server/plugins/auth.js';
import type { HealthReport } from '../inspector/server/station-view.js';
import { MODEL_RPC } from '../inspector/registry/rpc-handlers.js';
import { ModelNotFoundError, ModelUploadInvalidError, NoPreviousModelError, NoShadowError } from '../inspector/registry/errors.js';
import { ROLES, type Role } from '../inspector/review/review-db.js';
import { casesFor, type Op, type Param } from './helpers/api-fuzz-cases.js';
import { enc, MODEL_DIR, type Schema } from './helpers/api-fuzz-values.js';
import { reviewFixture, RUN, type Fixture } from './helpers/review-fixture.js';

type Caller = 'anonymous' | Role;
const CALLERS: Caller[] = ['anonymous', ...ROLES];
const USER_OF: Record<Role, string> = { operator: 'op1', qa: 'qa1', ml: 'ml1', admin: 'admin1' };

let fx: Fixture;
let work: string;
const health: HealthReport = {
  status: 'up', station: 'fuzz', uptimeS: 1, parts: 11,
  camera: { state: 'up', detail: 'replay: running', frames: 11, dropped: 0, restarts: 0, errors: 0 },
  model: { state: 'up', name: 'default', version: '1.1.0', provider: 'cpu', fallbacks: [] },
  plc: { state: 'up', detail: 'connected', endpoint: 'opc.tcp://127.0.0.1:4840', writes: 11, writeErrors: 0, reconnects: 0 },
  alarms: [],
};

/** The station's side of the RPC, as an empty registry and a running camera answer it (coded errors carry code and status). */
async function stationCall(method: string, args: unknown): Promise<unknown> {
  const ref = args as { name?: string; version?: string } | undefined;
  switch (method) {
    case 'model': return { name: 'default', version: '1.1.0', threshold: 0.5, outputs: { kind: 'anomaly_map', defectClasses: ['scratch', 'dent'] }, packageDir: MODEL_DIR };
    case 'liveFrame': {
      const data = new Uint8Array(64 * 48);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
      return { seq: 11, width: 64, height: 48, at: Date.now(), data };
    }
    case 'calibration.changed': return { ok: true };
    case MODEL_RPC.list: return { models: [], live: { name: 'default', version: '1.1.0' }, shadow: null, previous: [] };
    case MODEL_RPC.history: return [];
    case MODEL_RPC.staging: { const d = mkdtempSync(join(work, 'staging-')); return { dir: d }; }
    case MODEL_RPC.push: throw new ModelUploadInvalidError('the fuzz station refuses every package');
    case MODEL_RPC.unshadow: throw new NoShadowError('nothing is shadowing');
    case MODEL_RPC.rollback: throw new NoPreviousModelError('no model was live before this one');
    case MODEL_RPC.report:
      if (!ref?.name) throw new NoShadowError('no model is shadowing; name one to report on');
      throw new ModelNotFoundError(`${ref.name}@${ref.version}`); // a named model the empty registry does not have
    case MODEL_RPC.show: case MODEL_RPC.shadow: case MODEL_RPC.promote: case MODEL_RPC.delete:
      throw new ModelNotFoundError(`${ref?.name}@${ref?.version}`);
    default: throw Object.assign(new Error(`unknown RPC ${method}`), { code: 'INSPECTOR_RPC_UNKNOWN', statusCode: 404 });
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inspector-fuzz-'));
  mkdirSync(join(work, 'empty-board-folder'));
  fx = await reviewFixture({
    calibrationDir: join(work, 'calibration'),
    view: {
      health: async () => health,
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: '# fuzz\n' }),
      // as the RPC client does: errors keep their code and status (default 503)
      call: async <T>(method: string, args?: unknown): Promise<T> => stationCall(method, args).catch((err: Error & { code?: string; statusCode?: number }) => {
        throw Object.assign(new Error(err.message), { code: err.code, statusCode: err.statusCode ?? 503 });
      }) as Promise<T>,
    },
  });
  await fx.app.review.accounts.create('fuzz-target', 'fuzz-target-password', 'operator');
  // the operator panel the station posts once a second (GET /api/live/status answers its latest)
  fx.app.live.publish({ type: 'operator', status: {
    disk: null, images: { offered: 11, written: 10, dropped: 1, failed: 0 }, plc: null, ready: true,
    lastRejects: [{ runId: RUN, seq: 1, verdict: 'reject', code: 1, score: 0.9, frameToVerdictMs: 3, modelVersion: '1.1.0', imageSaved: true, at: Date.now(), defectClass: null }],
  } });
}, 120_000);
afterAll(async () => { await fx?.close(); rmSync(work, { recursive: true, force: true }); });

// ------------------------------------------------------------------ callers

const sessions = new Map<Role, string>();
const tokens = new Map<Role, string>();
/** A live credential of the role (recreated when the fuzz logged it out or revoked it). */
function credential(role: Role, n: number): Record<string, string> {
  const accounts = fx.app.review.accounts;
  const account = accounts.byName(USER_OF[role])!;
  if (n % 3 === 2) {
    let t = tokens.get(role);
    if (!t || !accounts.tokenAccount(t)) { t = accounts.createToken(account.id, 'fuzz').token; tokens.set(role, t); }
    return { authorization: `Bearer ${t}` };
  }
  let sid = sessions.get(role);
  if (!sid || !accounts.sessionAccount(sid)) { sid = accounts.createSession(account.id).id; sessions.set(role, sid); }
  return { cookie: `inspector_session=${sid}` };
}
const FORGED: Array<Record<string, string>> = [
  {}, { authorization: 'Bearer insp_' + 'A'.repeat(43) }, { authorization: 'Basic YWRtaW4xOmFkbWluMS1wYXNzd29yZA==' }, { authorization: 'Bearer' },
  { authorization: 'bearer ' + 'x'.repeat(5000) }, { cookie: 'inspector_session=forged' }, { cookie: 'inspector_session=' }, { authorization: 'Bearer a b' },
];

function allowed(access: RouteAccess, caller: Caller): boolean {
  if (access.public || access.roles === null) return true;
  if (caller === 'anonymous') return false;
  return access.roles.length === 0 || caller === 'admin' || access.roles.includes(caller);
}

// ------------------------------------------------------------------ the fuzz

describe('OpenAPI-driven fuzz of every route with every role', () => {
  it('finds no 5xx, no crash, no uncoded 4xx and no unauthorised 2xx', async () => {
    const tinyPng = await sharp(Buffer.alloc(32 * 24, 90), { raw: { width: 32, height: 24, channels: 1 } }).png().toBuffer();
    const doc = fx.app.swagger() as { paths: Record<string, Record<string, { parameters?: Param[]; requestBody?: { content?: Record<string, { schema: Schema }> } }>> };
    const access = new Map(fx.app.routeAccess.map((r) => [`${r.method} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}')}`, r]));
    const ops: Op[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [m, o] of Object.entries(methods)) {
        const method = m.toUpperCase();
        const a = access.get(`${method} ${path}`);
        expect(a, `${method} ${path} is not in app.routeAccess`).toBeDefined();
        ops.push({ method, path, params: o.parameters ?? [], body: o.requestBody?.content?.['application/json']?.schema ?? null, access: a! });
      }
    }
    // every route the app registered, except the WebSocket (OpenAPI 3 has none; test/security-web.test.ts), is in the document
    expect(ops.length).toBe(fx.app.routeAccess.filter((r) => !r.websocket).length);

    const problems: string[] = [];
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    let current = '';
    onTestFailed(() => { console.error(`api-fuzz: last request ${current}`); });
    const byStatus: Record<string, number> = {};
    let sent = 0;
    try {
      for (const [i, op] of ops.entries()) {
        const cases = casesFor(op, 1000 + i, { boardFolder: join(work, 'empty-board-folder'), tinyPng });
        for (const caller of CALLERS) {
          for (const [n, c] of cases.entries()) {
            const auth = caller === 'anonymous' ? FORGED[n % FORGED.length]! : credential(caller, n);
            const url = (c.rawPath ?? op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
              const v = c.path?.[name] ?? '';
              return name === '*' ? v.split('/').map(enc).join('/') : enc(v);
            })) + (c.query ? `?${c.query}` : '');
            const headers: Record<string, string> = { ...c.headers, ...auth };
            if (c.contentType) headers['content-type'] = c.contentType;
            const req: InjectOptions = { method: op.method as InjectOptions['method'], url, headers, remoteAddress: '127.0.0.1', ...(c.body !== undefined ? { payload: c.body } : {}) };
            current = `${caller} ${op.method} ${url.slice(0, 200)} [${c.what}]`;
            sent++;
            let res;
            try {
              res = await fx.app.inject(req);
            } catch (err) {
              problems.push(`THREW ${current}: ${(err as Error).message}`);
              continue;
            }
            byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
            const what = `${res.statusCode} ${current}`;
            if (res.statusCode >= 500) problems.push(`5xx ${what}: ${res.body.slice(0, 300)}`);
            else if (res.statusCode < 300 && !allowed(op.access, caller)) problems.push(`UNAUTHORISED 2xx ${what}`);
            else if (res.statusCode >= 400 && /json/.test(String(res.headers['content-type'])) && !/^INSPECTOR_/.test(String((res.json() as { code?: string }).code))) {
              problems.push(`UNCODED ${what}: ${res.body.slice(0, 200)}`);
            }
          }
        }
      }
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
    // the fuzz did not change who is who
    for (const [role, user] of Object.entries(USER_OF)) expect(fx.app.review.accounts.byName(user)?.role).toBe(role);
    const statuses = Object.entries(byStatus).sort(([a], [b]) => Number(a) - Number(b)).map(([s, k]) => `${s}:${k}`).join(' ');
    console.log(`api-fuzz: sent ${sent} requests over ${ops.length} operations x ${CALLERS.length} callers (${CALLERS.join(', ')}); statuses ${statuses}; `
      + `${problems.length} problems, ${uncaught.length} uncaught`);
    if (problems.length) console.error(`api-fuzz problems:\n${problems.join('\n')}`);
    expect(uncaught.map(String)).toEqual([]);
    expect(problems.slice(0, 40)).toEqual([]);
    expect(sent).toBeGreaterThan(ops.length * CALLERS.length * 20);
  }, 300_000);
});
