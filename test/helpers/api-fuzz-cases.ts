/**
 * The requests of the API fuzz (test/api-fuzz.test.ts) for one OpenAPI operation, built
 * from its schemas (values: api-fuzz-values.ts): see casesFor.
 */
import fc from 'fast-check';
import type { RouteAccess } from '../../inspector/server/plugins/auth.js';
import { badValues, enc, HINTS, INJECTION, json, pathValue, qs, TRAVERSAL, validValue, type Schema } from './api-fuzz-values.js';

/** random cases per operation and caller (fast-check, fixed seed) */
const RANDOM_CASES = 4;

export interface Param { name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: Schema }
export interface Op { method: string; path: string; params: Param[]; body: Schema | null; access: RouteAccess }
export interface Case { what: string; path?: Record<string, string>; rawPath?: string; query?: string; body?: string | Buffer; contentType?: string | null; headers?: Record<string, string> }
export interface CaseContext {
  /** an existing folder without calibration board images (the lens routes' imagesDir) */
  boardFolder: string;
  /** a small valid PNG for the multipart uploads */
  tinyPng: Buffer;
}

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

/**
 * The requests for one operation (each then sent by every caller): a valid one, boundary and
 * malformed path and query parameters and bodies, raw bodies of every kind on writes (multipart
 * ones on writes without a JSON body), header variants, and RANDOM_CASES from fast-check (seed).
 */
export function casesFor(op: Op, seed: number, ctx: CaseContext): Case[] {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const queryParams = op.params.filter((p) => p.in === 'query');
  const validPath = Object.fromEntries(pathParams.map((p) => [p.name, pathValue(validValue(p.schema, p.name))]));
  const validQuery = Object.fromEntries(queryParams.filter((p) => p.required || p.name in HINTS).map((p) => [p.name, validValue(p.schema, p.name)]));
  if (op.path === '/api/calibration/lens/view.png') validQuery.imagesDir = ctx.boardFolder;
  let validBody = op.body ? validValue(op.body) : undefined;
  if (op.path === '/api/auth/login') validBody = { username: 'qa2', password: 'qa2-password' };
  if (op.path === '/api/users' && op.method === 'POST') validBody = { username: 'fuzz-new', password: 'fuzz-new-password', role: 'operator' };
  if (op.path === '/api/calibration/lens') validBody = { ...(validBody as object), imagesDir: ctx.boardFolder };
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
        ['multipart png', multipartBody([{ field: 'image', filename: 'frame.png', bytes: ctx.tinyPng }])],
        ['multipart package-like', multipartBody([{ field: 'model.onnx', filename: 'model.onnx', bytes: Buffer.from('not onnx') }, { field: 'manifest.json', filename: 'manifest.json', bytes: Buffer.from('{"name":"x"}') }])],
        ['multipart garbage file', multipartBody([{ field: 'image', filename: 'x.png', bytes: Buffer.alloc(3000, 0xab) }])],
        ['multipart traversal name', multipartBody([{ field: '../../evil', filename: '../../../../tmp/evil.onnx', bytes: Buffer.from('x') }])],
        ['multipart unicode name', multipartBody([{ field: 'é漢', filename: '\u202egnp.exe', bytes: Buffer.from('x') }])],
        ['multipart 40 files', multipartBody(Array.from({ length: 40 }, (_, i) => ({ field: `f${i}`, filename: `f${i}.bin`, bytes: Buffer.from('x') })))],
        ['multipart fields only', multipartBody([], { fields: [['a', '1'], ['__proto__', 'x'], ['imagePath', '/etc/passwd']] })],
        ['multipart unterminated', multipartBody([{ field: 'image', filename: 'frame.png', bytes: ctx.tinyPng }], { close: false })],
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
