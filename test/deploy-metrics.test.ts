/**
 * deploy/: the Grafana dashboard and the Prometheus alert rules name only metrics the station
 * really exports. The station's registry is built as station.ts and start-server.ts build it
 * (StationMetrics with its default label, the line report of watchLine, WorkerDeaths, the
 * retention scheduler's metrics), every labelled metric is given samples through the station's
 * own code paths, and its text exposition is what /metrics serves. Every selector of every
 * PromQL expression in deploy/ is then checked against it: the metric family, its label names,
 * and the literal label values it matches (a stage, a verdict, an alarm, a PLC outcome). A
 * renamed metric, label or value fails here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { Alarm, Alarms } from '../inspector/station/alarms.js';
import { StationMetrics, type CountersSnapshot } from '../inspector/station/metrics.js';
import { WorkerDeaths } from '../inspector/station/worker-deaths.js';
import { RetentionScheduler } from '../inspector/retention/retention-scheduler.js';
import type { LineReport } from '../inspector/server/station-view.js';

const root = join(import.meta.dirname, '..');
const DASHBOARD = join(root, 'deploy/grafana/inline-inspector.json');
const RULES = join(root, 'deploy/prometheus/inline-inspector.rules.yml');
const quiet = logger.child({ test: 'deploy-metrics' }, { level: 'silent' });

// ---------------------------------------------------------------- the exposition

interface Family { name: string; type: string; samples: Array<Record<string, string>> }

/** Prometheus text format: `# TYPE` lines and samples, grouped by family. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) { families.set(t[1]!, { name: t[1]!, type: t[2]!, samples: [] }); continue; }
    if (line === '' || line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!s) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    const fam = familyOf(families, s[1]!);
    if (!fam) throw new Error(`sample without a # TYPE: ${line}`);
    fam.samples.push(labels);
  }
  return families;
}

const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

/** The family a series name belongs to: itself, or a histogram's/summary's _bucket/_sum/_count. */
function familyOf(families: Map<string, Family>, name: string): Family | undefined {
  const f = families.get(name);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = families.get(name.slice(0, -suffix.length));
    if (base && SUFFIXES[base.type]?.includes(suffix)) return base;
  }
  return undefined;
}

// ---------------------------------------------------------------- PromQL selectors

interface Matcher { label: string; op: '=' | '!=' | '=~' | '!~'; value: string }
interface Selector { name: string; matchers: Matcher[] }

const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'start', 'end']);
/** Aggregation operators: `sum by (x) (...)` puts the grouping between the operator and its `(`. */
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk',
  'quantile', 'limitk', 'limit_ratio']);

/**
 * The vector selectors of a PromQL expression: every identifier that is not a function or
 * aggregation (followed by `(`), a keyword, a grouping clause's labels, a duration, a number,
 * a string or a Grafana variable, with its `{...}` label matchers.
 */
export function selectorsOf(expr: string): Selector[] {
  const out: Selector[] = [];
  let i = 0;
  const n = expr.length;
  const skipSpace = (): void => { while (i < n && /\s/.test(expr[i]!)) i++; };
  const skipString = (): string => {
    const quote = expr[i++]!;
    let v = '';
    while (i < n && expr[i] !== quote) { if (expr[i] === '\\' && quote !== '`') v += expr[i++]; v += expr[i++]; }
    if (i >= n) throw new Error(`unterminated string in: ${expr}`);
    i++;
    return v;
  };
  const matchers = (): Matcher[] => {
    const ms: Matcher[] = [];
    i++; // {
    for (;;) {
      skipSpace();
      if (expr[i] === '}') { i++; return ms; }
      const l = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(expr.slice(i));
      if (!l) throw new Error(`bad label matcher at ${i} in: ${expr}`);
      i += l[0].length;
      skipSpace();
      const op = /^(=~|!~|!=|=)/.exec(expr.slice(i));
      if (!op) throw new Error(`bad matcher operator at ${i} in: ${expr}`);
      i += op[0].length;
      skipSpace();
      if (!['"', "'", '`'].includes(expr[i]!)) throw new Error(`label value must be a string at ${i} in: ${expr}`);
      ms.push({ label: l[0], op: op[0] as Matcher['op'], value: skipString() });
      skipSpace();
      if (expr[i] === ',') i++;
    }
  };
  let depth = 0;
  while (i < n) {
    const c = expr[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "'" || c === '`') { skipString(); continue; }
    if (c === '[') { const j = expr.indexOf(']', i); if (j < 0) throw new Error(`unclosed [ in: ${expr}`); i = j + 1; continue; }
    if (c === '$') { i++; while (i < n && /[a-zA-Z0-9_]/.test(expr[i]!)) i++; continue; }
    if (/[0-9.]/.test(c)) { while (i < n && /[0-9a-zA-Z_.]/.test(expr[i]!)) i++; continue; }
    if (c === '{') throw new Error(`a selector without a metric name in: ${expr}`);
    if (c === '(') { depth++; i++; continue; }
    if (c === ')') { depth--; i++; if (depth < 0) throw new Error(`unbalanced ) in: ${expr}`); continue; }
    if (/[a-zA-Z_:]/.test(c)) {
      const id = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      i += id.length;
      skipSpace();
      if (GROUPING.has(id)) {
        if (expr[i] === '(') { const j = expr.indexOf(')', i); if (j < 0) throw new Error(`unclosed ( in: ${expr}`); i = j + 1; }
        continue;
      }
      if (expr[i] === '(' || KEYWORDS.has(id) || AGGREGATIONS.has(id)) continue;
      out.push({ name: id, matchers: expr[i] === '{' ? matchers() : [] });
      continue;
    }
    i++; // operators, commas
  }
  if (depth !== 0) throw new Error(`unbalanced parentheses in: ${expr}`);
  return out;
}

/** Series Prometheus makes itself for each target; not in /metrics. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_series_added']);
/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = new Set(['job', 'instance']);
/**
 * Families the dashboard or rules may name that have no sample in this test: a retention pass
 * has to run (and go over budget) for `outcome` to have values. Their label names are still checked.
 */
const NO_SAMPLES_HERE = new Set(['inspector_retention_passes_total', 'inspector_retention_usage_bytes']);

interface Exported { families: Map<string, Family>; labelNames: (family: string) => string[] }

/** Problems of one expression against the exposition (empty: every selector is exported). */
export function checkExpression(expr: string, where: string, exp: Exported): string[] {
  const problems: string[] = [];
  let selectors: Selector[];
  try { selectors = selectorsOf(expr); } catch (err) { return [`${where}: ${(err as Error).message}`]; }
  if (selectors.length === 0) problems.push(`${where}: no metric in ${expr}`);
  const all = [...exp.families.values()].flatMap((f) => f.samples);
  const defaultLabels = all.length ? Object.keys(all[0]!).filter((k) => all.every((s) => k in s)) : [];
  for (const sel of selectors) {
    if (SYNTHETIC.has(sel.name)) continue;
    const fam = familyOf(exp.families, sel.name);
    if (!fam) { problems.push(`${where}: ${sel.name} is not exported by the station`); continue; }
    if (fam.samples.length === 0 && !NO_SAMPLES_HERE.has(fam.name)) {
      problems.push(`${where}: ${fam.name} has no samples: the test does not exercise it`);
    }
    const known = new Set([...defaultLabels, ...TARGET_LABELS, ...exp.labelNames(fam.name), ...fam.samples.flatMap((s) => Object.keys(s))]);
    if (sel.name.endsWith('_bucket')) known.add('le');
    for (const m of sel.matchers) {
      if (!known.has(m.label)) { problems.push(`${where}: ${sel.name} has no label ${m.label}`); continue; }
      if (TARGET_LABELS.has(m.label) || m.value.includes('$') || fam.samples.length === 0) continue;
      const values = new Set(fam.samples.map((s) => s[m.label]).filter((v) => v !== undefined));
      const literal = m.op === '=' || m.op === '!=' ? [m.value]
        : /^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(m.value) ? m.value.split('|') : [];
      for (const v of literal) if (!values.has(v)) problems.push(`${where}: ${sel.name}{${m.label}} never has the value ${v} (has: ${[...values].join(', ')})`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------- deploy/ files

interface Located { where: string; expr: string }

/** Every PromQL expression of the dashboard: panel targets, annotations, and the variables' label_values(). */
function dashboardExpressions(d: Record<string, unknown>): { exprs: Located[]; labelValues: Array<Located & { label: string }> } {
  const exprs: Located[] = [];
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) { v.forEach((x, k) => walk(x, `${path}[${k}]`)); return; }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const title = typeof o.title === 'string' ? ` "${o.title}"` : typeof o.name === 'string' ? ` "${o.name}"` : '';
    for (const [k, x] of Object.entries(o)) {
      if (k === 'expr' && typeof x === 'string') exprs.push({ where: `dashboard ${path}${title}`, expr: x });
      else if (k !== 'templating') walk(x, `${path}.${k}`);
    }
  };
  walk(d, '');
  const labelValues: Array<Located & { label: string }> = [];
  for (const v of (d.templating as { list: Array<Record<string, unknown>> }).list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
    if (!m) throw new Error(`variable ${String(v.name)}: not a label_values() query: ${q}`);
    labelValues.push({ where: `dashboard variable ${String(v.name)}`, expr: m[1]!, label: m[2]! });
  }
  return { exprs, labelValues };
}

interface Rule { alert?: unknown; expr?: unknown; for?: unknown; labels?: { severity?: unknown }; annotations?: { summary?: unknown } }

function ruleList(): Rule[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

// ---------------------------------------------------------------- the station's registry

let work: string;
let retention: RetentionScheduler;
let metrics: StationMetrics;
let exported: Exported;

function lineReport(): LineReport {
  return {
    plc: { epoch: 3, lastPartId: 120, parts: 120, accepted: 100, rejected: 18, timeout: 2, late: 1, sequenceErrors: 0, refused: 1, duplicates: 0 },
    station: {
      inspected: 110, partSyncErrors: 1,
      notInspected: { dropped: 1, camera_error: 2, not_seen: 3, stale_epoch: 0, model_down: 0, inference_timeout: 4, station_stopping: 0, inspection_stopped: 0 },
    },
    readBack: { reads: 50, readErrors: 1, mismatches: 0, refusals: 1, missed: 0 },
  };
}

async function exposition(m: StationMetrics): Promise<Exported> {
  const families = parseExposition((await m.text()).body);
  const labelNames = (name: string): string[] => {
    const metric = m.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined;
    return metric?.labelNames ?? [];
  };
  return { families, labelNames };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inspector-deploy-metrics-'));
  const snapshot = (): CountersSnapshot => ({
    camera: { frames: 1000, dropped: 3, restarts: 1, errors: 1 },
    plc: { writes: 990, writeErrors: 2, reconnects: 1, heartbeats: 40 },
    images: { offered: 400, written: 390, dropped: 10, failed: 0 },
  });
  // as station.ts: the alarms feed the metrics, WorkerDeaths and retention register on its registry
  let m: StationMetrics | null = null;
  const alarms = new Alarms(quiet, (name, raised) => m?.setAlarm(name, raised));
  m = new StationMetrics(snapshot, { station: 'line-7' });
  metrics = m;
  retention = RetentionScheduler.start({
    budgetBytes: 1024, rejectDays: 30, passDays: 1, passKeepEvery: 10, imagesDir: join(work, 'var'),
    resultsDbPath: join(work, 'var/results.sqlite'), reviewDbPath: join(work, 'var/review.sqlite'),
    intervalMs: 24 * 3600_000, store: { update: () => undefined }, logger: quiet, registry: m.registry,
  });
  const deaths = new WorkerDeaths(m.registry, alarms);
  // as start-server.ts: the PLC's outcome counters beside the station's
  m.watchLine(lineReport);

  // samples through the station's own paths: every alarm edge, every stage, both verdicts, a death
  for (const name of Object.values(Alarm)) { alarms.set(name, true, 'test'); alarms.set(name, false); }
  alarms.set(Alarm.PART_SYNC, true, 'test');
  for (const stage of ['dispatch', 'inference', 'registration', 'frame_to_verdict', 'plc_write'] as const) m.observeStage(stage, 3);
  m.countPart('pass', 0, false);
  m.countPart('reject', 1, true);
  m.countDefectClass('scratch');
  m.setImageChecks({ tenengrad: 1, laplacianVar: 1, mean: 100, saturatedFraction: 0, darkFraction: 0 });
  m.setCalibration(2, true);
  deaths.died('capture', 'test');
  exported = await exposition(m);
});

afterAll(async () => {
  await retention?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('deploy/: metrics named by the dashboard and the alert rules', () => {
  it('the PromQL selector parser finds metrics, labels and values, and skips functions, groupings, strings, durations', () => {
    expect(selectorsOf('histogram_quantile(0.99, sum by (station, le) (rate(inspector_stage_seconds_bucket{station=~"$station", stage="inference"}[$__rate_interval])))'))
      .toEqual([{ name: 'inspector_stage_seconds_bucket', matchers: [{ label: 'station', op: '=~', value: '$station' }, { label: 'stage', op: '=', value: 'inference' }] }]);
    expect(selectorsOf('sum by (station) (rate(a_total[5m])) / sum without (x) (b)').map((s) => s.name)).toEqual(['a_total', 'b']);
    expect(selectorsOf('a_total / on(instance) group_left(x) b offset 1d > bool 2 * 1e3 and c unless absent(up{job="j"})').map((s) => s.name))
      .toEqual(['a_total', 'b', 'c', 'up']);
    expect(() => selectorsOf('sum(rate(x[5m])')).toThrow(/unbalanced/);
  });

  it('the station exports what the dashboard and the rules rely on (it is exercised, not empty)', () => {
    const f = exported.families;
    for (const name of ['inspector_verdicts_total', 'inspector_stage_seconds', 'inspector_plc_outcomes', 'inspector_parts_not_inspected_total',
      'inspector_alarm', 'inspector_worker_deaths_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(f.get(name)?.samples.length, name).toBeGreaterThan(0);
    }
    expect(f.get('inspector_stage_seconds')!.type).toBe('histogram');
    // the station's default label is on every sample: the dashboard's $station variable reads it
    for (const fam of f.values()) for (const s of fam.samples) expect(s.station, fam.name).toBe('line-7');
  });

  it('every metric, label and value in the Grafana dashboard exists in /metrics', () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, unknown>;
    const { exprs, labelValues } = dashboardExpressions(d);
    expect(exprs.length).toBeGreaterThan(20);
    const problems = exprs.flatMap((e) => checkExpression(e.expr, e.where, exported));
    for (const v of labelValues) {
      problems.push(...checkExpression(v.expr, v.where, exported));
      for (const sel of selectorsOf(v.expr)) {
        const fam = familyOf(exported.families, sel.name);
        if (fam && !fam.samples.some((s) => v.label in s)) problems.push(`${v.where}: ${sel.name} has no label ${v.label}`);
      }
    }
    expect(problems).toEqual([]);
    // the panels the issue asks for are there
    const named = new Set(exprs.flatMap((e) => selectorsOf(e.expr).map((s) => familyOf(exported.families, s.name)?.name ?? s.name)));
    for (const name of ['inspector_verdicts_total', 'inspector_stage_seconds', 'inspector_plc_outcomes', 'inspector_parts_not_inspected_total',
      'inspector_alarm', 'inspector_worker_deaths_total', 'inspector_camera_restarts_total', 'inspector_frames_dropped_total',
      'inspector_images_dropped_total', 'nodejs_eventloop_lag_p99_seconds', 'process_resident_memory_bytes']) {
      expect(named.has(name), name).toBe(true);
    }
  });

  it('the dashboard is importable: schema, a Prometheus datasource variable, the station variable, unique ids, a 24-column grid', () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      schemaVersion: number; uid: string; title: string;
      templating: { list: Array<{ name: string; type: string; query: unknown }> };
      panels: Array<{ id: number; type: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { type: string; uid: string }; targets?: Array<{ refId: string; expr: string }> }>;
    };
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const vars = Object.fromEntries(d.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(vars.station).toMatchObject({ type: 'query', query: 'label_values(inspector_parts_total, station)' });
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w, `panel ${p.id}`).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, `panel ${p.id}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, `panel ${p.id}`).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr, `panel ${p.id}`).toContain('station=~"$station"');
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
    }
  });

  it('every alert rule is complete and names only metrics, labels and values in /metrics', () => {
    const rules = ruleList();
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const problems: string[] = [];
    for (const r of rules) {
      const where = `rule ${String(r.alert)}`;
      if (typeof r.alert !== 'string' || !/^[A-Za-z][A-Za-z0-9]*$/.test(r.alert)) problems.push(`${where}: alert name`);
      if (typeof r.expr !== 'string' || !r.expr.trim()) { problems.push(`${where}: expr`); continue; }
      if (typeof r.for !== 'string' || !/^\d+[smhd]$/.test(r.for)) problems.push(`${where}: for`);
      if (r.labels?.severity !== 'critical' && r.labels?.severity !== 'warning') problems.push(`${where}: labels.severity`);
      if (typeof r.annotations?.summary !== 'string' || !r.annotations.summary.trim()) problems.push(`${where}: annotations.summary`);
      problems.push(...checkExpression(r.expr, where, exported));
    }
    expect(problems).toEqual([]);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    // PART_SYNC and PLC_LINK_DOWN raised for a minute are critical
    const critical = rules.filter((r) => r.labels?.severity === 'critical' && String(r.expr).includes('inspector_alarm'));
    for (const alarm of [Alarm.PART_SYNC, Alarm.PLC_LINK_DOWN]) {
      expect(critical.some((r) => String(r.expr).includes(alarm) && r.for === '1m'), alarm).toBe(true);
    }
  });

  it('a renamed metric, label value or label fails the check', () => {
    const renamed = (from: string, to: string): Exported => ({
      ...exported, families: parseExposition(renderFamilies(exported.families).replaceAll(from, to)),
    });
    const rules = ruleList();
    const problemsWith = (e: Exported): string[] => rules.flatMap((r) => checkExpression(String(r.expr), String(r.alert), e));
    expect(problemsWith(exported)).toEqual([]);
    expect(problemsWith(renamed('inspector_worker_deaths_total', 'inspector_worker_death_total')).join('\n'))
      .toMatch(/inspector_worker_deaths_total is not exported/);
    expect(problemsWith(renamed('outcome="timeout"', 'outcome="timeouts"')).join('\n')).toMatch(/never has the value timeout/);
    expect(problemsWith(renamed('alarm="PART_SYNC"', 'alarm="PARTSYNC"')).join('\n')).toMatch(/never has the value PART_SYNC/);
    expect(checkExpression('rate(inspector_verdicts_total{result="reject"}[5m])', 'x', exported).join('\n')).toMatch(/has no label result/);
    expect(checkExpression('inspector_stage_seconds_sum{stage="frame_to_verdict"}', 'x', exported)).toEqual([]);
    expect(checkExpression('inspector_parts_total_bucket', 'x', exported).join('\n')).toMatch(/not exported/);
  });
});

/** Families back to text (TYPE lines and samples), for the renaming checks. */
function renderFamilies(families: Map<string, Family>): string {
  const lines: string[] = [];
  for (const f of families.values()) {
    lines.push(`# TYPE ${f.name} ${f.type}`);
    const series = f.type === 'histogram' ? `${f.name}_count` : f.name;
    for (const s of f.samples) lines.push(`${series}{${Object.entries(s).map(([k, v]) => `${k}="${v}"`).join(',')}} 1`);
  }
  return lines.join('\n');
}
