/**
 * A model package rolled out to a fleet of stations through each station's HTTP API
 * (`inspector models push PKG --stations FILE`, `inspector models rollback --stations FILE`).
 *
 * Rollout, in the order of the stations file:
 *   1. every station: push the package (already there: fine), then shadow it, so that every station
 *      compares the candidate with its live model on its own parts while the others are promoted;
 *   2. station by station, the first being the canary: wait until its shadow has compared at least
 *      --min-parts parts, require agreement >= --min-agreement, then promote (the station's own
 *      validation gate: load, latency, golden-set accuracy). The next station is touched only when
 *      the previous one passed both.
 *   3. the first refusal (push, signature, shadow agreement, shadow timeout, gate, a station that
 *      cannot be reached) stops the rollout, and the stations this rollout already promoted are rolled
 *      back, so the fleet is left on the model it had: one model per line, not a mix, which is what
 *      an ML team expects when a canary looked fine but a later station refuses. Shadows this rollout
 *      started on stations not promoted are stopped. A station whose rollback fails is reported as such.
 * Every station gets a line in the report (table, or --json), whatever happened to it.
 *
 * The stations file (JSON, or YAML when the `yaml` package is installed): a list, or `{ stations: [...] }`,
 * of `{ name, url, token, ca?, fingerprint? }` (`ca` relative to the file's folder; see station-client.ts
 * for how a station's certificate is trusted). Tokens in it are secrets: keep the file mode 0600.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { MANIFEST_FILE, parseManifest } from '../inference/model-package.js';
import type { Command } from 'commander';
import { api, stationConn, type StationConn } from './station-client.js';

const StationEntry = Type.Object({
  name: Type.String({ minLength: 1 }),
  url: Type.String({ pattern: '^https?://' }),
  token: Type.String({ minLength: 1 }),
  ca: Type.Optional(Type.String({ minLength: 1 })),
  fingerprint: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false });
const StationsFile = Type.Union([Type.Array(StationEntry, { minItems: 1 }), Type.Object({ stations: Type.Array(StationEntry, { minItems: 1 }) })]);
export type StationEntry = Static<typeof StationEntry>;

export interface FleetStation { name: string; conn: StationConn }

const usage = (message: string): Error => Object.assign(new Error(message), { code: 'INSPECTOR_FLEET_FILE' });

/** Read and check a stations file; names must be unique (the report is keyed by them). */
export async function readStationsFile(file: string): Promise<FleetStation[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usage(`--stations ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = /\.ya?ml$/i.test(file) ? (await import('yaml')).parse(text) : JSON.parse(text);
  } catch (err) {
    throw usage(`--stations ${file}: ${(err as Error).message}`);
  }
  if (!Value.Check(StationsFile, doc)) {
    const e = [...Value.Errors(StationsFile, doc)].slice(0, 3).map((x) => `${x.path || '/'}: ${x.message}`).join('; ');
    throw usage(`--stations ${file}: expected a list of { name, url, token, ca?, fingerprint? }: ${e}`);
  }
  const list = Array.isArray(doc) ? doc : doc.stations;
  const seen = new Set<string>();
  return list.map((s) => {
    if (seen.has(s.name)) throw usage(`--stations ${file}: the name ${s.name} is there twice`);
    seen.add(s.name);
    const ca = s.ca && !isAbsolute(s.ca) ? join(dirname(file), s.ca) : s.ca;
    return { name: s.name, conn: stationConn({ url: s.url, token: s.token, ...(ca ? { ca } : {}), ...(s.fingerprint ? { fingerprint: s.fingerprint } : {}) }) };
  });
}

export interface ModelRef { name: string; version: string }
export type StationStatus = 'promoted' | 'already-live' | 'refused' | 'rolled-back' | 'rollback-failed' | 'not-promoted' | 'failed' | 'skipped';

export interface StationOutcome {
  name: string;
  url: string;
  status: StationStatus;
  /** live model before the rollout / rollback, and after */
  before: ModelRef | null;
  after: ModelRef | null;
  pushed: 'pushed' | 'present' | null;
  shadow: { compared: number; agree: number; agreement: number | null } | null;
  gate: { ok: boolean; reasons: string[] } | null;
  error: { code: string; message: string } | null;
}

export interface RolloutOptions {
  /** shadow agreement a station must reach before it is promoted (0..1) */
  minAgreement: number;
  /** compared parts the agreement must rest on */
  minParts: number;
  /** how long to wait for minParts on one station */
  shadowTimeoutMs: number;
  pollMs?: number;
  /** progress lines (stderr in the CLI) */
  log?: (line: string) => void;
}

export interface FleetReport { package: ModelRef | null; ok: boolean; stoppedAt: string | null; stations: StationOutcome[] }

type ModelList = { live: ModelRef | null; shadow: ModelRef | null };
type ShadowReport = { compared: number; agree: number };

const same = (a: ModelRef | null, b: ModelRef | null): boolean => !!a && !!b && a.name === b.name && a.version === b.version;
const refPath = (r: ModelRef): string => `/api/models/${encodeURIComponent(r.name)}/${encodeURIComponent(r.version)}`;
const errorOf = (err: unknown): { code: string; message: string } =>
  ({ code: (err as { code?: string }).code ?? 'ERROR', message: (err as Error).message });
const refusal = (code: string, message: string): Error => Object.assign(new Error(message), { code });

function outcome(s: FleetStation): StationOutcome {
  return { name: s.name, url: s.conn.url, status: 'not-promoted', before: null, after: null, pushed: null, shadow: null, gate: null, error: null };
}

async function liveOf(s: FleetStation): Promise<ModelList> {
  return api<ModelList>(s.conn, 'GET', '/api/models');
}

/** Wait until the station's shadow of `ref` compared minParts parts; its agreement then. */
async function shadowAgreement(s: FleetStation, ref: ModelRef, o: RolloutOptions): Promise<StationOutcome['shadow'] & object> {
  const end = Date.now() + o.shadowTimeoutMs;
  const q = `?name=${encodeURIComponent(ref.name)}&version=${encodeURIComponent(ref.version)}`;
  for (;;) {
    const r = await api<ShadowReport>(s.conn, 'GET', `/api/models/shadow/report${q}`);
    const got = { compared: r.compared, agree: r.agree, agreement: r.compared > 0 ? r.agree / r.compared : null };
    if (r.compared >= o.minParts) return got;
    if (Date.now() > end) {
      throw Object.assign(refusal('INSPECTOR_FLEET_SHADOW_TIMEOUT', `the shadow compared ${r.compared} parts in ${Math.round(o.shadowTimeoutMs / 1000)} s, `
        + `fewer than --min-parts ${o.minParts} (is the line running?)`), { shadow: got });
    }
    await new Promise((res) => setTimeout(res, o.pollMs ?? 1000));
  }
}

/** Push, gate and shadow on every station, then promote one by one; the first refusal stops it and undoes the promotions. */
export async function rolloutPackage(pkgDir: string, form: () => Promise<FormData>, stations: FleetStation[], o: RolloutOptions): Promise<FleetReport> {
  const manifest = parseManifest(await readFile(join(pkgDir, MANIFEST_FILE), 'utf8'), join(pkgDir, MANIFEST_FILE));
  const ref: ModelRef = { name: manifest.name, version: manifest.version };
  const log = o.log ?? (() => undefined);
  const out = stations.map(outcome);
  const shadowing: number[] = [];
  const promoted: number[] = [];
  let stoppedAt: string | null = null;
  const stop = (i: number, err: unknown, status: StationStatus = 'refused'): void => {
    out[i]!.status = status;
    out[i]!.error = errorOf(err);
    stoppedAt = stations[i]!.name;
    log(`${stations[i]!.name}: ${out[i]!.error!.code}: ${out[i]!.error!.message}`);
  };

  // 1. every station gets the package and shadows it
  for (let i = 0; i < stations.length && !stoppedAt; i++) {
    const s = stations[i]!;
    try {
      out[i]!.before = (await liveOf(s)).live;
      if (same(out[i]!.before, ref)) { out[i]!.status = 'already-live'; log(`${s.name}: ${ref.name}@${ref.version} is already live`); continue; }
      try {
        await api(s.conn, 'POST', '/api/models', await form());
        out[i]!.pushed = 'pushed';
      } catch (err) {
        if ((err as { code?: string }).code !== 'INSPECTOR_MODEL_EXISTS') throw err;
        out[i]!.pushed = 'present'; // pushed before (an earlier rollout): the station checked it then
      }
      await api(s.conn, 'POST', `${refPath(ref)}/shadow`, {});
      shadowing.push(i);
      log(`${s.name}: pushed and shadowing ${ref.name}@${ref.version}`);
    } catch (err) {
      stop(i, err, (err as { code?: string }).code?.startsWith('INSPECTOR_STATION_') ? 'failed' : 'refused');
    }
  }

  // 2. station by station: agreement on enough parts, then the station's gate
  for (let i = 0; i < stations.length && !stoppedAt; i++) {
    const s = stations[i]!;
    if (out[i]!.status === 'already-live') continue;
    try {
      const agreement = await shadowAgreement(s, ref, o).catch((err: Error & { shadow?: StationOutcome['shadow'] }) => {
        if (err.shadow) out[i]!.shadow = err.shadow;
        throw err;
      });
      out[i]!.shadow = agreement;
      if ((agreement.agreement ?? 0) < o.minAgreement) {
        throw refusal('INSPECTOR_FLEET_DISAGREEMENT', `shadow agreement ${(100 * (agreement.agreement ?? 0)).toFixed(1)} % on ${agreement.compared} parts, `
          + `below --min-agreement ${(100 * o.minAgreement).toFixed(1)} %`);
      }
      try {
        const gate = await api<{ ok: boolean; reasons: string[] }>(s.conn, 'POST', `${refPath(ref)}/promote`, {});
        out[i]!.gate = { ok: gate.ok, reasons: gate.reasons ?? [] };
      } catch (err) {
        if ((err as { code?: string }).code === 'INSPECTOR_MODEL_VALIDATION_FAILED') out[i]!.gate = { ok: false, reasons: [(err as Error).message] };
        throw err;
      }
      promoted.push(i);
      out[i]!.status = 'promoted';
      log(`${s.name}: promoted (${i === 0 ? 'canary, ' : ''}agreement ${(100 * (agreement.agreement ?? 0)).toFixed(1)} % on ${agreement.compared} parts, gate passed)`);
    } catch (err) {
      stop(i, err, (err as { code?: string }).code?.startsWith('INSPECTOR_STATION_') ? 'failed' : 'refused');
    }
  }

  // 3. a refusal anywhere: the stations promoted by this rollout go back, newest first; shadows started are stopped
  if (stoppedAt) {
    for (const i of [...promoted].reverse()) {
      const s = stations[i]!;
      try {
        const r = await api<{ from: ModelRef | null; to: ModelRef }>(s.conn, 'POST', '/api/models/rollback', {});
        out[i]!.status = same(r.to, out[i]!.before) ? 'rolled-back' : 'rollback-failed';
        if (out[i]!.status === 'rollback-failed') out[i]!.error = { code: 'INSPECTOR_FLEET_ROLLBACK', message: `rolled back to ${r.to.name}@${r.to.version}, not the model it had` };
        log(`${s.name}: rolled back to ${r.to.name}@${r.to.version}`);
      } catch (err) {
        out[i]!.status = 'rollback-failed';
        out[i]!.error = errorOf(err);
        log(`${s.name}: ROLLBACK FAILED: ${out[i]!.error!.code}: ${out[i]!.error!.message}`);
      }
    }
    for (const i of shadowing) {
      if (promoted.includes(i)) continue;
      try {
        if (same((await liveOf(stations[i]!)).shadow, ref)) await api(stations[i]!.conn, 'DELETE', '/api/models/shadow');
      } catch (err) {
        log(`${stations[i]!.name}: could not stop the shadow: ${errorOf(err).message}`);
      }
    }
  }
  for (let i = 0; i < stations.length; i++) {
    out[i]!.after = await liveOf(stations[i]!).then((m) => m.live, () => null); // what each station runs now, as it says itself
  }
  return { package: ref, ok: stoppedAt === null, stoppedAt, stations: out };
}

/** Roll back every station (optionally only those whose live model is `ifLive`); every station is tried. */
export async function rollbackFleet(stations: FleetStation[], o: { ifLive?: ModelRef; log?: (line: string) => void } = {}): Promise<FleetReport> {
  const out = stations.map(outcome);
  for (let i = 0; i < stations.length; i++) {
    const s = stations[i]!;
    try {
      out[i]!.before = (await liveOf(s)).live;
      if (o.ifLive && !same(out[i]!.before, o.ifLive)) { out[i]!.status = 'skipped'; out[i]!.after = out[i]!.before; continue; }
      const r = await api<{ to: ModelRef }>(s.conn, 'POST', '/api/models/rollback', {});
      out[i]!.after = r.to;
      out[i]!.status = 'rolled-back';
      o.log?.(`${s.name}: rolled back to ${r.to.name}@${r.to.version}`);
    } catch (err) {
      out[i]!.status = 'failed';
      out[i]!.error = errorOf(err);
      o.log?.(`${s.name}: ${out[i]!.error!.code}: ${out[i]!.error!.message}`);
    }
  }
  const failed = out.find((x) => x.status === 'failed');
  return { package: o.ifLive ?? null, ok: !failed, stoppedAt: null, stations: out };
}

const refText = (r: ModelRef | null): string => (r ? `${r.name}@${r.version}` : '-');

/** The per-station table the CLI prints. */
export function reportTable(r: { stations: StationOutcome[] }): string {
  const rows = [['station', 'status', 'before', 'now', 'shadow', 'gate', 'error'], ...r.stations.map((s) => [
    s.name, s.status, refText(s.before), refText(s.after),
    s.shadow ? `${s.shadow.agreement === null ? '-' : (100 * s.shadow.agreement).toFixed(1) + ' %'} of ${s.shadow.compared}` : '-',
    s.gate ? (s.gate.ok ? 'passed' : 'refused') : '-',
    s.error ? `${s.error.code}: ${s.error.message}` : '',
  ])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n') + '\n';
}

// ── command line glue (registered by models-command.ts) ─────────────────────────────────────────

export interface FleetPushCliOptions { stations?: string; minAgreement: number; minParts: number; shadowTimeout: number; json?: boolean }

const fraction = (v: string): number => {
  const x = Number(v.endsWith('%') ? Number(v.slice(0, -1)) / 100 : v);
  if (!(x >= 0 && x <= 1)) throw Object.assign(new Error(`--min-agreement ${v}: give a fraction from 0 to 1 (or a percentage, 98%)`), { code: 'INSPECTOR_USAGE' });
  return x;
};
const whole = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw Object.assign(new Error(`${name} ${v}: give a whole number`), { code: 'INSPECTOR_USAGE' });
  return x;
};

/** `models push --stations FILE` and its thresholds. */
export function addFleetPushOptions(cmd: Command): Command {
  return cmd
    .option('--stations <file>', 'roll the package out to every station of this file (JSON/YAML list of { name, url, token, ca?, fingerprint? })')
    .option('--min-agreement <f>', 'fleet: shadow agreement a station needs before it is promoted (0..1 or 98%)', fraction, 0.98)
    .option('--min-parts <n>', 'fleet: parts the shadow must have compared on each station', whole('--min-parts'), 200)
    .option('--shadow-timeout <s>', 'fleet: seconds to wait for --min-parts on one station', whole('--shadow-timeout'), 1800)
    .option('--json', 'fleet: print the per-station report as JSON');
}

function printReport(r: FleetReport, json: boolean | undefined): void {
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : reportTable(r));
}

/** Run a fleet rollout from the command line: progress on stderr, the report on stdout, a refusal exits 1. */
export async function fleetPushAction(dir: string, o: FleetPushCliOptions, form: (dir: string) => Promise<FormData>): Promise<void> {
  const stations = await readStationsFile(o.stations!);
  await form(dir); // a package folder that is not one is refused here, before any station is asked
  const r = await rolloutPackage(dir, () => form(dir), stations, {
    minAgreement: o.minAgreement, minParts: o.minParts, shadowTimeoutMs: o.shadowTimeout * 1000,
    log: (line) => process.stderr.write(`fleet: ${line}\n`),
  });
  printReport(r, o.json);
  if (!r.ok) {
    const undone = r.stations.filter((s) => s.status === 'rolled-back').map((s) => s.name);
    const stuck = r.stations.filter((s) => s.status === 'rollback-failed').map((s) => s.name);
    throw Object.assign(new Error(`rollout of ${refText(r.package)} stopped at ${r.stoppedAt}`
      + (undone.length ? `; rolled back ${undone.join(', ')}` : '; no station had been promoted')
      + (stuck.length ? `; ROLLBACK FAILED on ${stuck.join(', ')}: roll them back by hand` : '')), { code: 'INSPECTOR_FLEET_REFUSED' });
  }
}

export function addFleetRollbackOptions(cmd: Command): Command {
  return cmd
    .option('--stations <file>', 'roll back every station of this file (JSON/YAML list of { name, url, token, ca?, fingerprint? })')
    .option('--if-live <name@version>', 'fleet: only the stations whose live model is this one')
    .option('--json', 'fleet: print the per-station report as JSON');
}

export async function fleetRollbackAction(o: { stations?: string; ifLive?: string; json?: boolean }): Promise<void> {
  const stations = await readStationsFile(o.stations!);
  let ifLive: ModelRef | undefined;
  if (o.ifLive) {
    const at = o.ifLive.lastIndexOf('@');
    if (at <= 0 || at === o.ifLive.length - 1) throw Object.assign(new Error(`--if-live ${o.ifLive}: give NAME@VERSION`), { code: 'INSPECTOR_USAGE' });
    ifLive = { name: o.ifLive.slice(0, at), version: o.ifLive.slice(at + 1) };
  }
  const r = await rollbackFleet(stations, { ...(ifLive ? { ifLive } : {}), log: (line) => process.stderr.write(`fleet: ${line}\n`) });
  printReport(r, o.json);
  if (!r.ok) {
    const failed = r.stations.filter((s) => s.status === 'failed').map((s) => s.name);
    throw Object.assign(new Error(`rollback failed on ${failed.join(', ')} (the others were rolled back)`), { code: 'INSPECTOR_FLEET_ROLLBACK' });
  }
}
