/**
 * Values from JSON schemas for the API fuzz (test/api-fuzz.test.ts): a value each schema
 * accepts (named hints first, so that requests reach real data), and bounded sets of
 * boundary and malformed values (wrong types, huge and negative numbers, long strings,
 * path traversal, unicode, NUL bytes, injection strings); query strings and JSON that
 * carry them.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { RUN } from './review-fixture.js';

export const MODEL_DIR = fileURLToPath(new URL('../../models/default/1.0.0/', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Schema = Record<string, any>;

export const TRAVERSAL = ['../../../../etc/passwd', '..%2f..%2fetc%2fpasswd', '/etc/passwd', 'images/../../../etc/shadow', '....//....//etc', 'C:\\Windows\\win.ini', '\\\\server\\share'];
export const UNICODE = ['é漢字🙂', '\u202eevil', '\u0000', 'a\u0000b', '\ud800', '𝕏'.repeat(70), ' '];
export const INJECTION = ["' OR 1=1 --", '${{7*7}}', '<script>alert(1)</script>', '%s%s%s%n', '{"$gt":""}', '__proto__'];
export const NUMBERS: unknown[] = [-1, 0, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, 9007199254740993n, '1', 'NaN', 'Infinity', '-0', '0x10', '1e3', ''];

/** names whose example values reach real data (only used where they fit the schema) */
export const HINTS: Record<string, unknown> = {
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
export function validValue(s: Schema, name?: string): unknown {
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
export function badValues(s: Schema): unknown[] {
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
export const enc = (v: string): string => encodeURIComponent(Buffer.from(v, 'utf8').toString('utf8'));

/** Query string of name → value (objects as JSON, bigint as digits). */
export function qs(values: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const s = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${enc(k)}=${enc(s)}`);
  }
  return parts.join('&');
}
export const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
export const pathValue = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
