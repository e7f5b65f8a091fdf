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
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import sharp from 'sharp';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { RouteAccess } from '../inspector/server/plugins/auth.js';
import type { HealthReport } from '../inspector/server/station-view.js';
import { MODEL_RPC } from '../inspector/registry/rpc-handlers.js';
import { ModelNotFoundError, ModelUploadInvalidError, NoPreviousModelError, NoShadowError } from '../inspector/registry/errors.js';
import { ROLES, type Role } from '../inspector/review/review-db.js';
import { reviewFixture, RUN, type Fixture } from './helpers/review-fixture.js';

type Caller = 'anonymous' | Role;
const CALLERS: Caller[] = ['anonymous', ...ROLES];
const USER_OF: Record<Role, string> = { operator: 'op1', qa: 'qa1', ml: 'ml1', admin: 'admin1' };
const MODEL_DIR = fileURLToPath(new URL('../models/default/1.0.0/', import.meta.url));
/** random cases per operation and caller (fast-check, fixed seed) */
const RANDOM_CASES = 4;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Schema = Record<string, any>;
interface Param { name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: Schema }
interface Op { method: string; path: string; params: Param[]; body: Schema | null; access: RouteAccess }
interface Case { what: string; path?: Record<string, string>; rawPath?: string; query?: string; body?: string | Buffer; contentType?: string | null; headers?: Record<string, string> }

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

// ------------------------------------------------------------------ values from schemas

const TRAVERSAL = ['../../../../etc/passwd', '..%2f..%2fetc%2fpasswd', '/etc/passwd', 'images/../../../etc/shadow', '....//....//etc', 'C:\\Windows\\win.ini', '\\\\server\\share'];
const UNICODE = ['é漢字🙂', '\u202eevil', '\u0000', 'a\u0000b', '\ud800', '𝕏'.repeat(70), ' '];
const INJECTION = ["' OR 1=1 --", '${{7*7}}', '<script>alert(1)</script>', '%s%s%s%n', '{"$gt":""}', '__proto__'];
const NUMBERS: unknown[] = [-1, 0, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, 9007199254740993n, '1', 'NaN', 'Infinity', '-0', '0x10', '1e3', ''];

/** names whose example values reach real data (only used where they fit the schema) */
const HINTS: Record<string, unknown> = {
  runId: RUN, seq: 1, username: 'fuzz-target', name: 'default', version: '1.0.0', imagePath: `images/${RUN}/reject/1.png`,
  packageDir: MODEL_DIR, format: 'coco', verdict: 'true_defect', role: 'operator', reviewed: true, limit: 5, width: 32,
};

function types(s: Schema): string[] { return Array.isArray(s.type) ? s.type : s.type ? [s.type] : []; }

/** Whether a primitive value fits a primitive schema (enough to use a hint). */
function fits(s: Schema, v: unknown): boolean {
  if (s.enum) return s.enum.includes(v);
  const t = types(s)[0];
  if (t === 'string') {
    return typeof v === 'string' && v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity)
      && (!s.pattern || new RegExp(s.pattern, 'u').test(v));
  }
  if (t === 'integer' || t === 'number') {
    return typeof v === 'number' && (t === 'number' || Number.isInteger(v)) && v >= (s.minimum ?? -Infinity) && v <= (s.maximum ?? Infinity)
      && (s.exclusiveMinimum === undefined || v > s.exclusiveMinimum);
  }
  if (t === 'boolean') return typeof v === 'boolean';
  return false;
}

function sampleString(s: Schema, seed: number): string {
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? Math.max(min, 12);
  if (s.pattern) {
    const found = fc.sample(fc.stringMatching(new RegExp(s.pattern, 'u')), { seed, numRuns: 50 }).find((x) => x.length >= min && x.length <= max);
    if (found !== undefined) return found;
  }
  if (s.format === 'date-time') return new Date(Date.UTC(2026, 0, 5, 10)).toISOString();
  return 'fuzz'.padEnd(Math.max(min, 1), 'z').slice(0, Math.max(1, Math.min(max, Math.max(min, 4))));
}

/** A value the schema accepts (named hints first, where they fit). */
function validValue(s: Schema, name?: string): unknown {
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  const alt = s.anyOf ?? s.oneOf;
  if (alt) return validValue(alt.find((b: Schema) => !types(b).includes('null')) ?? alt[0], name);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((b: Schema) => validValue(b, name)));
  if (name !== undefined && name in HINTS && fits(s, HINTS[name])) return HINTS[name];
  const t = types(s).find((x) => x !== 'null') ?? (s.properties ? 'object' : undefined);
  switch (t) {
    case 'string': return sampleString(s, 1);
    case 'integer': case 'number': {
      const lo = s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : s.minimum ?? 1;
      return Math.min(s.maximum ?? Infinity, Math.max(lo, 1));
    }
    case 'boolean': return true;
    case 'null': return null;
    case 'array': {
      if (Array.isArray(s.items)) return s.items.map((i: Schema) => validValue(i));
      const n = Math.min(s.maxItems ?? 1, Math.max(s.minItems ?? 0, 1));
      return Array.from({ length: n }, () => validValue(s.items ?? {}));
    }
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [k, p] of Object.entries<Schema>(s.properties ?? {})) o[k] = validValue(p, k);
      return o;
    }
    default: return {};
  }
}

/** Boundary and malformed values for one schema (bounded). */
function badValues(s: Schema): unknown[] {
  const t = types(s).find((x) => x !== 'null') ?? (s.properties ? 'object' : s.enum || s.anyOf ? 'enum' : undefined);
  const out: unknown[] = [null, true, { nested: { deep: [1, 2, 3] } }, [1, 'two', null]];
  if (t === 'string' || t === 'enum') {
    const min = s.minLength ?? 0;
    const max = s.maxLength ?? 4096;
    out.push('', 12345, 'x'.repeat(Math.max(0, min - 1)), 'x'.repeat(max + 1), 'x'.repeat(100_000), ...TRAVERSAL, ...UNICODE, ...INJECTION);
    if (t === 'enum') out.push('TRUE_DEFECT', 'operator ', 'admin');
  } else if (t === 'integer' || t === 'number') {
    if (s.minimum !== undefined) out.push(s.minimum, s.minimum - 1);
    if (s.maximum !== undefined) out.push(s.maximum, s.maximum + 1);
    if (s.exclusiveMinimum !== undefined) out.push(s.exclusiveMinimum);
    out.push(...NUMBERS);
  } else if (t === 'boolean') {
    out.push('true', 'yes', 0, 1, 'null');
  } else if (t === 'array') {
    const item = Array.isArray(s.items) ? s.items[0] ?? {} : s.items ?? {};
    out.push([], {}, 'a,b', Array.from({ length: Math.min((s.maxItems ?? 1000) + 1, 2001) }, () => validValue(item)), [null], ['x'], [[[[[]]]]]);
  } else if (t === 'object') {
    out.push({}, [], 'object', 0);
  }
  return out;
}

/** encodeURIComponent that survives lone surrogates (they become U+FFFD, as a client's UTF-8 encoder makes them) */
const enc = (v: string): string => encodeURIComponent(Buffer.from(v, 'utf8').toString('utf8'));

/** Query string of name → value (objects as JSON, bigint as digits). */
function qs(values: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const s = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${enc(k)}=${enc(s)}`);
  }
  return parts.join('&');
}
const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
const pathValue = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : typeof v === 'object' ? JSON.stringify(v) : String(v));

// ------------------------------------------------------------------ cases

let tinyPng: Buffer;
function multipartBody(files: Array<{ field: string; filename: string; bytes: Buffer }>, opts: { close?: boolean; fields?: Array<[string, string]> } = {}): { body: Buffer; contentType: string } {
  const boundary = '----fuzz-boundary-7MA4YWxkTrZu0gW';
  const chunks: Buffer[] = [];
  for (const [name, value] of opts.fields ?? []) chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  for (const f of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${f.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`), f.bytes, Buffer.from('\r\n'));
  }
  if (opts.close !== false) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

function casesFor(op: Op, seed: number): Case[] {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const queryParams = op.params.filter((p) => p.in === 'query');
  const validPath = Object.fromEntries(pathParams.map((p) => [p.name, pathValue(validValue(p.schema, p.name))]));
  const validQuery = Object.fromEntries(queryParams.filter((p) => p.required || p.name in HINTS).map((p) => [p.name, validValue(p.schema, p.name)]));
  if (op.path === '/api/calibration/lens/view.png') validQuery.imagesDir = join(work, 'empty-board-folder');
  let validBody = op.body ? validValue(op.body) : undefined;
  if (op.path === '/api/auth/login') validBody = { username: 'qa2', password: 'qa2-password' };
  if (op.path === '/api/users' && op.method === 'POST') validBody = { username: 'fuzz-new', password: 'fuzz-new-password', role: 'operator' };
  if (op.path === '/api/calibration/lens') validBody = { ...(validBody as object), imagesDir: join(work, 'empty-board-folder') };
  const write = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(op.method);
  const base: Case = { what: 'valid', path: validPath, query: qs(validQuery), ...(validBody !== undefined ? { body: json(validBody), contentType: 'application/json' } : {}) };
  const cases: Case[] = [base];
  const withBody = (what: string, v: unknown): Case => ({ ...base, what, body: json(v), contentType: 'application/json' });

  for (const p of pathParams) {
    for (const v of badValues(p.schema)) cases.push({ ...base, what: `path ${p.name}=${pathValue(v).slice(0, 40)}`, path: { ...validPath, [p.name]: pathValue(v) } });
  }
  for (const raw of ['%', '%E0%A4%A', '..%2F..%2F..%2Fetc%2Fpasswd', '%00', '..', '.', '%2e%2e', 'a'.repeat(3000)]) {
    if (pathParams.length === 0) break;
    const last = pathParams[pathParams.length - 1]!.name;
    const template = op.path.replace(/\{([^}]+)\}/g, (_m, n: string) => (n === last ? '\u0001' : enc(validPath[n]!)));
    cases.push({ ...base, what: `raw path ${raw.slice(0, 20)}`, rawPath: template.replace('\u0001', raw) });
  }
  for (const p of queryParams) {
    for (const v of badValues(p.schema)) cases.push({ ...base, what: `query ${p.name}=${String(v).slice(0, 40)}`, query: qs({ ...validQuery, [p.name]: v }) });
    cases.push({ ...base, what: `query ${p.name} twice`, query: `${qs(validQuery)}&${qs({ [p.name]: validValue(p.schema, p.name) })}&${qs({ [p.name]: validValue(p.schema, p.name) })}` });
    if (p.required) cases.push({ ...base, what: `query without ${p.name}`, query: qs({ ...validQuery, [p.name]: undefined }) });
  }
  cases.push({ ...base, what: 'unknown query parameter', query: `${qs(validQuery)}&zzz=1&__proto__[x]=1` });

  if (op.body) {
    for (const v of badValues(op.body)) cases.push(withBody(`body ${json(v)?.slice(0, 40)}`, v));
    const obj = (op.body.anyOf ?? [op.body]).find((b: Schema) => b.properties) as Schema | undefined;
    if (obj && validBody && typeof validBody === 'object') {
      const vb = validBody as Record<string, unknown>;
      for (const k of obj.required ?? []) { const { [k]: _gone, ...rest } = vb; cases.push(withBody(`body without ${k}`, rest)); }
      cases.push(withBody('body with an extra field', { ...vb, zzz: 1 }));
      cases.push({ ...base, what: 'body with __proto__', body: `{"__proto__":{"admin":true},${json(vb).slice(1)}`, contentType: 'application/json' });
      cases.push({ ...base, what: 'body with constructor.prototype', body: `{"constructor":{"prototype":{"admin":true}},${json(vb).slice(1)}`, contentType: 'application/json' });
      for (const [k, ps] of Object.entries<Schema>(obj.properties ?? {})) {
        for (const v of badValues(ps).slice(0, 14)) cases.push(withBody(`body ${k}=${json(v)?.slice(0, 30)}`, { ...vb, [k]: v }));
      }
    }
  }
  if (write) {
    const raw: Array<[string, string | Buffer, string | null]> = [
      ['broken json', '{"broken": ', 'application/json'], ['empty json', '', 'application/json'], ['json null', 'null', 'application/json'],
      ['json array', '[1,2,3]', 'application/json'], ['json string', '"just a string"', 'application/json'],
      ['deep nesting', '['.repeat(5000) + ']'.repeat(5000), 'application/json'], ['deep object', '{"a":'.repeat(3000) + '1' + '}'.repeat(3000), 'application/json'],
      ['2 MiB body', json({ x: 'x'.repeat(2 << 20) }), 'application/json'], ['utf-16 charset', json(validBody ?? {}), 'application/json; charset=utf-16'],
      ['text/plain', json(validBody ?? {}), 'text/plain'], ['form-urlencoded', 'a=1&b=2', 'application/x-www-form-urlencoded'],
      ['xml', '<a>1</a>', 'application/xml'], ['no content type', json(validBody ?? {}), null], ['binary', Buffer.from([0, 255, 254, 1, 2]), 'application/octet-stream'],
      ['multipart without boundary', 'x', 'multipart/form-data'], ['invalid utf-8 json', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 'application/json'],
    ];
    for (const [what, body, contentType] of raw) cases.push({ ...base, what, body, contentType });
    if (!op.body) {
      // routes without a JSON body take uploads (model packages, calibration images): every write gets multipart cases
      const m = [
        ['multipart png', multipartBody([{ field: 'image', filename: 'frame.png', bytes: tinyPng }])],
        ['multipart package-like', multipartBody([{ field: 'model.onnx', filename: 'model.onnx', bytes: Buffer.from('not onnx') }, { field: 'manifest.json', filename: 'manifest.json', bytes: Buffer.from('{"name":"x"}') }])],
        ['multipart garbage file', multipartBody([{ field: 'image', filename: 'x.png', bytes: Buffer.alloc(3000, 0xab) }])],
        ['multipart traversal name', multipartBody([{ field: '../../evil', filename: '../../../../tmp/evil.onnx', bytes: Buffer.from('x') }])],
        ['multipart unicode name', multipartBody([{ field: 'é漢', filename: '\u202egnp.exe', bytes: Buffer.from('x') }])],
        ['multipart 40 files', multipartBody(Array.from({ length: 40 }, (_, i) => ({ field: `f${i}`, filename: `f${i}.bin`, bytes: Buffer.from('x') })))],
        ['multipart fields only', multipartBody([], { fields: [['a', '1'], ['__proto__', 'x'], ['imagePath', '/etc/passwd']] })],
        ['multipart unterminated', multipartBody([{ field: 'image', filename: 'frame.png', bytes: tinyPng }], { close: false })],
        ['multipart empty', multipartBody([])],
      ] as const;
      for (const [what, { body, contentType }] of m) cases.push({ ...base, what, body, contentType });
    }
  }
  const headerSets: Array<[string, Record<string, string>]> = [
    ['foreign origin', { origin: 'http://evil.example', referer: 'http://evil.example/x' }], ['foreign host', { host: 'evil.example:666' }],
    ['odd accept', { accept: 'application/xml;q=0.9, */*;q=0.1', 'accept-encoding': 'br, gzip, deflate' }],
    ['forwarded', { 'x-forwarded-for': '1.2.3.4, 127.0.0.1', 'x-forwarded-proto': 'https', 'x-real-ip': '::1' }],
    ['junk cookie', { cookie: 'inspector_session=' + 'A'.repeat(400) + '; other=%%%' }], ['huge header', { 'x-fuzz': 'x'.repeat(8000) }],
  ];
  for (const [what, headers] of headerSets) cases.push({ ...base, what: `header ${what}`, headers });

  // random: fast-check, fixed seed per operation
  const anyText = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom(...TRAVERSAL, ...INJECTION));
  const rnd = fc.record({
    path: fc.array(anyText, { minLength: pathParams.length, maxLength: pathParams.length }),
    query: fc.dictionary(fc.constantFrom(...queryParams.map((p) => p.name), 'zzz'), fc.oneof(anyText, fc.integer(), fc.double())),
    body: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(validBody)),
  });
  for (const r of fc.sample(rnd, { seed, numRuns: RANDOM_CASES })) {
    cases.push({
      what: 'random', path: Object.fromEntries(pathParams.map((p, i) => [p.name, r.path[i] || validPath[p.name]!])), query: qs(r.query),
      ...(write ? { body: json(r.body) ?? 'null', contentType: 'application/json' } : {}),
    });
  }
  return cases;
}

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
    tinyPng = await sharp(Buffer.alloc(32 * 24, 90), { raw: { width: 32, height: 24, channels: 1 } }).png().toBuffer();
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
        const cases = casesFor(op, 1000 + i);
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
