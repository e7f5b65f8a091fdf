/**
 * GStreamer pipeline templates: data in `pipelines/<name>.json`, rendered here.
 *
 * A template is `{ description, photoEye, variables, defaults, sections?, launch }`.
 * `launch` holds `{{name}}` placeholders for variables and sections. A section
 * (e.g. the replay photo-eye branch) is rendered only when its `when` variable
 * has a value, and is left out entirely otherwise.
 *
 * Every value is validated against its declared type and rendered so that it
 * cannot change the pipeline's structure: numbers are rendered by us, enums and
 * IPv4 addresses are checked against closed patterns, and every free-form
 * string (paths, URLs, devices) is double-quoted with `\` and `"` escaped, which
 * gst_parse_launch reads back as one literal property value.
 *
 * Unknown variables, missing variables, bad values and malformed templates all
 * throw PipelineTemplateError (code INSPECTOR_PIPELINE_TEMPLATE).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PipelineTemplateError } from '../core/errors.js';

export const TEMPLATE_NAMES = ['replay', 'replay-triggered', 'testsrc', 'v4l2', 'gige', 'rtsp'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** Every template ends with this sink; GstFrameSource pulls from `sink`. */
export const APPSINK_TAIL = 'appsink name=sink sync=false max-buffers=2 drop=false emit-signals=false';

/** `<repo>/pipelines`, found from this file's location. */
export const DEFAULT_PIPELINES_DIR = fileURLToPath(new URL('../../pipelines/', import.meta.url));

export type VariableType = 'int' | 'number' | 'rate' | 'enum' | 'ipv4' | 'device' | 'path' | 'filePattern' | 'url';
const VARIABLE_TYPES: readonly VariableType[] = ['int', 'number', 'rate', 'enum', 'ipv4', 'device', 'path', 'filePattern', 'url'];

export interface VariableSpec {
  type: VariableType;
  description?: string;
  min?: number;
  max?: number;
  multipleOf?: number;
  /** enum: the allowed values */
  values?: string[];
  /** url: allowed protocols, with the colon ('rtsp:') */
  protocols?: string[];
  /** may be left without a value (sections that depend on it are then left out) */
  optional?: boolean;
}

export interface TemplateSection {
  /** the section is rendered when this variable has a value */
  when: string;
  launch: string;
}

export interface PipelineTemplate {
  name: string;
  description: string;
  photoEye: boolean;
  /** the camera takes one frame per line trigger (an appsrc named `src` fed by triggered-feed.ts) */
  trigger: boolean;
  variables: Record<string, VariableSpec>;
  defaults: Record<string, unknown>;
  sections: Record<string, TemplateSection>;
  launch: string;
}

export type TemplateValues = Record<string, string | number | null | undefined>;

const PLACEHOLDER = /\{\{([A-Za-z][A-Za-z0-9]*)\}\}/g;
const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const ENUM_VALUE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DEVICE_RE = /^\/dev\/[A-Za-z0-9._/-]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function fail(message: string): never {
  throw new PipelineTemplateError(message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Double-quote a string for gst_parse_launch so it stays one literal value. */
export function quoteGstString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function placeholders(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

function parseTemplate(name: string, raw: unknown): PipelineTemplate {
  if (!isRecord(raw)) fail(`template ${name}: not a JSON object`);
  const { description, photoEye, trigger, variables, defaults, sections, launch } = raw;
  if (typeof launch !== 'string' || launch.length === 0) fail(`template ${name}: "launch" must be a string`);
  if (!isRecord(variables)) fail(`template ${name}: "variables" must be an object`);
  const vars: Record<string, VariableSpec> = {};
  for (const [v, spec] of Object.entries(variables)) {
    if (!isRecord(spec) || !VARIABLE_TYPES.includes(spec.type as VariableType)) {
      fail(`template ${name}: variable ${v} has no valid "type"`);
    }
    if (spec.type === 'enum' && (!Array.isArray(spec.values) || spec.values.length === 0
      || !spec.values.every((x) => typeof x === 'string' && ENUM_VALUE_RE.test(x)))) {
      fail(`template ${name}: enum variable ${v} needs "values" made of [A-Za-z0-9_-]`);
    }
    vars[v] = spec as unknown as VariableSpec;
  }
  const secs: Record<string, TemplateSection> = {};
  if (sections !== undefined) {
    if (!isRecord(sections)) fail(`template ${name}: "sections" must be an object`);
    for (const [s, sec] of Object.entries(sections)) {
      if (!isRecord(sec) || typeof sec.when !== 'string' || typeof sec.launch !== 'string') {
        fail(`template ${name}: section ${s} needs "when" and "launch" strings`);
      }
      if (!vars[sec.when]) fail(`template ${name}: section ${s} depends on undeclared variable ${sec.when}`);
      if (vars[s]) fail(`template ${name}: ${s} is both a variable and a section`);
      for (const p of placeholders(sec.launch)) {
        if (!vars[p]) fail(`template ${name}: section ${s} uses undeclared variable {{${p}}}`);
      }
      secs[s] = { when: sec.when, launch: sec.launch };
    }
  }
  for (const p of placeholders(launch)) {
    if (!vars[p] && !secs[p]) fail(`template ${name}: launch uses undeclared {{${p}}}`);
  }
  if (!launch.trimEnd().endsWith(APPSINK_TAIL)) fail(`template ${name}: launch must end with "${APPSINK_TAIL}"`);
  const defs = defaults === undefined ? {} : defaults;
  if (!isRecord(defs)) fail(`template ${name}: "defaults" must be an object`);
  const tpl: PipelineTemplate = {
    name,
    description: typeof description === 'string' ? description : '',
    photoEye: photoEye === true,
    trigger: trigger === true,
    variables: vars,
    defaults: defs,
    sections: secs,
    launch,
  };
  for (const [v, value] of Object.entries(defs)) {
    const spec = vars[v];
    if (!spec) fail(`template ${name}: default for undeclared variable ${v}`);
    renderValue(name, v, spec, value);
  }
  return tpl;
}

/** Load and check `pipelines/<name>.json`. */
export function loadPipelineTemplate(name: string, dir: string = DEFAULT_PIPELINES_DIR): PipelineTemplate {
  if (!NAME_RE.test(name)) fail(`template name "${name}" is invalid`);
  const file = path.join(dir, `${name}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    fail(`unknown template "${name}" (no ${file})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(`template ${name}: ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseTemplate(name, raw);
}

function toNumber(tpl: string, v: string, value: unknown): number {
  const n = typeof value === 'number' ? value
    : typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) fail(`template ${tpl}: ${v} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

function checkRange(tpl: string, v: string, spec: VariableSpec, n: number): void {
  if (spec.min !== undefined && n < spec.min) fail(`template ${tpl}: ${v}=${n} is below ${spec.min}`);
  if (spec.max !== undefined && n > spec.max) fail(`template ${tpl}: ${v}=${n} is above ${spec.max}`);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** 50 → "50/1", 29.97 → "2997/100" (three decimals at most). */
export function toFraction(rate: number): string {
  const den = 1000;
  const num = Math.round(rate * den);
  const g = gcd(num, den);
  return `${num / g}/${den / g}`;
}

function checkedString(tpl: string, v: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(`template ${tpl}: ${v} must be a non-empty string`);
  if (CONTROL_RE.test(value)) fail(`template ${tpl}: ${v} contains control characters`);
  return value;
}

/** Validate one value and render it as launch-string text. */
function renderValue(tpl: string, v: string, spec: VariableSpec, value: unknown): string {
  switch (spec.type) {
    case 'int': {
      const n = toNumber(tpl, v, value);
      if (!Number.isInteger(n)) fail(`template ${tpl}: ${v} must be an integer, got ${n}`);
      checkRange(tpl, v, spec, n);
      if (spec.multipleOf && n % spec.multipleOf !== 0) {
        fail(`template ${tpl}: ${v}=${n} must be a multiple of ${spec.multipleOf}`
          + ' (GRAY8 rows are padded to 4 bytes in GStreamer buffers)');
      }
      return String(n);
    }
    case 'number': {
      const n = toNumber(tpl, v, value);
      checkRange(tpl, v, spec, n);
      return String(n);
    }
    case 'rate': {
      const n = toNumber(tpl, v, value);
      if (n <= 0) fail(`template ${tpl}: ${v} must be positive`);
      checkRange(tpl, v, spec, n);
      return toFraction(n);
    }
    case 'enum': {
      if (typeof value !== 'string' || !(spec.values ?? []).includes(value)) {
        fail(`template ${tpl}: ${v} must be one of ${(spec.values ?? []).join(', ')}, got ${JSON.stringify(value)}`);
      }
      return value;
    }
    case 'ipv4': {
      if (typeof value !== 'string' || !IPV4_RE.test(value)) fail(`template ${tpl}: ${v} must be an IPv4 address, got ${JSON.stringify(value)}`);
      return value;
    }
    case 'device': {
      const s = checkedString(tpl, v, value);
      if (!DEVICE_RE.test(s) || s.split('/').includes('..')) fail(`template ${tpl}: ${v} must be a /dev/… path, got ${JSON.stringify(s)}`);
      return quoteGstString(s);
    }
    case 'path': {
      const s = checkedString(tpl, v, value);
      if (!path.isAbsolute(s)) fail(`template ${tpl}: ${v} must be an absolute path`);
      return quoteGstString(s);
    }
    case 'filePattern': {
      const s = checkedString(tpl, v, value);
      if (!path.isAbsolute(s)) fail(`template ${tpl}: ${v} must be an absolute path`);
      const percents = s.split('%').length - 1;
      if (percents !== 1 || !/%0?\d*d/.test(s)) fail(`template ${tpl}: ${v} must hold exactly one %d/%05d and no other '%'`);
      return quoteGstString(s);
    }
    case 'url': {
      const s = checkedString(tpl, v, value);
      if (/\s/.test(s)) fail(`template ${tpl}: ${v} must not contain whitespace`);
      let url: URL;
      try {
        url = new URL(s);
      } catch {
        fail(`template ${tpl}: ${v} is not a URL: ${JSON.stringify(s)}`);
      }
      if (spec.protocols && !spec.protocols.includes(url.protocol)) {
        fail(`template ${tpl}: ${v} must use ${spec.protocols.join(' or ')}, got ${url.protocol}`);
      }
      return quoteGstString(s);
    }
  }
}

/** Substitute validated values into a template; returns the launch string. */
export function renderPipelineTemplate(tpl: PipelineTemplate, values: TemplateValues): string {
  for (const v of Object.keys(values)) {
    if (!tpl.variables[v]) {
      fail(`template ${tpl.name}: unknown variable ${v} (known: ${Object.keys(tpl.variables).join(', ')})`);
    }
  }
  const rendered = new Map<string, string>();
  for (const [v, spec] of Object.entries(tpl.variables)) {
    const given = values[v];
    const value = given === undefined || given === null ? tpl.defaults[v] : given;
    if (value === undefined || value === null) continue;
    rendered.set(v, renderValue(tpl.name, v, spec, value));
  }
  const substitute = (text: string, where: string): string => text.replace(PLACEHOLDER, (_m, p: string) => {
    const section = tpl.sections[p];
    if (section) {
      if (!rendered.has(section.when)) return '';
      return substitute(section.launch, `section ${p}`);
    }
    const r = rendered.get(p);
    if (r === undefined) {
      const why = tpl.variables[p]?.optional ? ' (optional, but used outside a section)' : '';
      fail(`template ${tpl.name}: missing variable ${p}${why} in ${where}`);
    }
    return r;
  });
  // No whitespace normalisation: quoted values (paths) must stay byte-exact.
  return substitute(tpl.launch, 'launch').trim();
}

/** Load `pipelines/<name>.json` and render it. */
export function renderPipeline(name: string, values: TemplateValues, dir?: string): string {
  return renderPipelineTemplate(loadPipelineTemplate(name, dir), values);
}
