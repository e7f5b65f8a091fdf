/**
 * `inspector models …`: the model registry through the station's HTTP API.
 *
 *   inspector models sign DIR --key key.pem        sign a package folder (writes DIR/signature.json; local, no station)
 *   inspector models verify DIR --key key.pub.pem  verify a package folder's signature against public keys (local)
 *   inspector models push DIR                      upload a package folder (manifest.json, model.onnx, signature.json, listed files)
 *   inspector models list | history [--json]      a table (--json: the API's JSON, for scripts)
 *   inspector models show NAME VERSION
 *   inspector models shadow NAME VERSION | shadow --stop
 *   inspector models report [NAME VERSION] [--json]  shadow agreement: one compared count, agreement in %
 *   inspector models promote NAME VERSION          validation gate + live swap (prints the gate's checks)
 *   inspector models rollback
 *   inspector models delete NAME VERSION
 *
 * Every subcommand but sign and verify takes --url (default https://127.0.0.1:8080 or INSPECTOR_URL),
 * --token (or INSPECTOR_TOKEN: a bearer token from POST /api/tokens) and, for a station's own certificate,
 * --fingerprint SHA256 or --ca FILE (station-client.ts). `push --stations FILE` / `rollback --stations FILE`:
 * a fleet, station by station (fleet-rollout.ts).
 * A refused request prints the server's code and message and exits 1.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { MANIFEST_FILE, MODEL_FILE, parseManifest } from '../inference/model-package.js';
import { SIGNATURE_FILE, TrustedKeys, readPrivateKey, signPackage, verifyPackage } from '../registry/signing.js';
import { ModelPackageMissingError } from '../core/errors.js';
import { share, textTable } from './text-table.js';

// the station's HTTP(S) client (--url, --token, --ca, --fingerprint; clear words on failure) and the fleet rollout
import { addConnectionOptions, api, connection } from './station-client.js';
import { addFleetPushOptions, addFleetRollbackOptions, fleetPushAction, fleetRollbackAction, type FleetPushCliOptions } from './fleet-rollout.js';
export { api };

/**
 * The multipart form for a package folder: manifest.json first (the station checks every later
 * part against it), model.onnx, signature.json when there is one, and the files the manifest lists.
 */
export async function packageForm(dir: string): Promise<FormData> {
  assertPackageFolder(dir);
  const manifest = parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE));
  const form = new FormData();
  const signed = existsSync(join(dir, SIGNATURE_FILE)) ? [SIGNATURE_FILE] : [];
  for (const f of [MANIFEST_FILE, MODEL_FILE, ...signed, ...(manifest.files ?? [])]) {
    form.append(f, new Blob([await readFile(join(dir, f))]), f);
  }
  return form;
}

/**
 * A package folder that is not there is one clear coded error naming the folder and what to give
 * instead (not the file system's `ENOENT: …`, which main.ts would print after its own `ENOENT:`).
 */
export function assertPackageFolder(dir: string): void {
  const abs = resolve(dir);
  const what = 'give the package folder (manifest.json + model.onnx, as `inspector teach --out` or the trainer writes it)';
  let isDir = false;
  try { isDir = statSync(abs).isDirectory(); } catch { /* absent */ }
  if (!isDir) throw new ModelPackageMissingError(`there is no folder ${abs}: ${what}`);
  if (!existsSync(join(abs, MANIFEST_FILE))) throw new ModelPackageMissingError(`${abs} has no ${MANIFEST_FILE}: ${what}`);
}

interface ListedModel { name: string; version: string; live: boolean; shadow: boolean; previous: number; kind: string | null; threshold: number | null; description: string | null; problem?: string }
interface HistoryEvent { at: string; actor: string; action: string; model: { name: string; version: string } | null; detail?: string; signer?: string | null }
interface ShadowReportBody {
  shadow: { name: string; version: string } | null; live: { name: string; version: string } | null; since: string | null;
  stats: Record<string, number> | null; compared: number; agree: number; disagree: number;
  shadowRejectsLivePasses: number; shadowPassesLiveRejects: number;
  disagreements: Array<{ run_id: string; seq: number; score: number | null; verdict: string; live_score: number | null; live_verdict: string; image_path: string | null }>;
}
const ref = (m: { name: string; version: string } | null): string => (m ? `${m.name}@${m.version}` : '–');
const num = (v: number | null): string => (v === null ? '–' : v.toFixed(3));

/** `models list` for people: one row per package. */
export function formatModelList(models: readonly ListedModel[]): string {
  if (models.length === 0) return 'no model packages in the registry (push one with `inspector models push DIR`)\n';
  return textTable(['model', 'state', 'kind', 'threshold', 'description'], models.map((m) => [
    ref(m), [m.live ? 'live' : '', m.shadow ? 'shadow' : '', m.previous ? `rollback #${m.previous}` : '', m.problem ? `problem: ${m.problem}` : '']
      .filter(Boolean).join(', '), m.kind ?? '?', num(m.threshold), m.description ?? '']));
}

/** `models history` for people: one row per change, oldest first. */
export function formatHistory(events: readonly HistoryEvent[]): string {
  if (events.length === 0) return 'no registry changes yet\n';
  return textTable(['when', 'who', 'action', 'model', 'signer', 'detail'],
    events.map((e) => [e.at, e.actor, e.action, ref(e.model), e.signer ?? '', e.detail ?? '']));
}

/**
 * `models report` for people: ONE compared count (the stored shadow verdicts of this model) and the
 * agreement as a percentage of it; the counts of this run that compared nothing (skipped, errors) beside.
 */
export function formatShadowReport(r: ShadowReportBody): string {
  const lines = [
    `shadow ${ref(r.shadow)} vs live ${ref(r.live)}${r.since ? ` (shadowing since ${r.since})` : ''}`,
    `compared ${r.compared} parts: agree ${r.agree} (${share(r.agree, r.compared)}), disagree ${r.disagree} (${share(r.disagree, r.compared)})`,
    `  shadow rejects, live passed: ${r.shadowRejectsLivePasses}`,
    `  shadow passes, live rejected: ${r.shadowPassesLiveRejects}`,
  ];
  if (r.stats) lines.push(`this run: ${r.stats.skipped ?? 0} parts skipped (shadow busy), ${r.stats.errors ?? 0} shadow errors`);
  let out = `${lines.join('\n')}\n`;
  if (r.disagreements.length) {
    out += `\ndisagreements (${r.disagreements.length} listed):\n`;
    out += textTable(['run', 'part', 'live', 'shadow', 'image'], r.disagreements.map((d) => [
      d.run_id, d.seq, `${d.live_verdict} ${num(d.live_score)}`, `${d.verdict} ${num(d.score)}`, d.image_path ?? '']));
  }
  return out;
}

const print = (v: unknown): void => { process.stdout.write(`${JSON.stringify(v, null, 2)}\n`); };
const path = (name: string, version: string): string => `/api/models/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;

export function modelsCommand(): Command {
  const models = new Command('models')
    .description('model registry: push, list, show, shadow, promote, roll back, delete (through the station\'s HTTP API)');
  addConnectionOptions(models);

  models.command('sign').argument('<dir>', 'package folder').requiredOption('--key <file>', 'ed25519 private key (PEM, from `inspector keys create`)')
    .description('check a package folder and sign it: writes DIR/signature.json (local; no station needed)')
    .action(async (dir: string, o: { key: string }) => {
      const doc = await signPackage(dir, readPrivateKey(o.key));
      print({ signed: join(dir, SIGNATURE_FILE), keyId: doc.keyId, package: doc.package, files: doc.files, manifestSha256: doc.manifestSha256 });
    });
  models.command('verify').argument('<dir>', 'package folder').requiredOption('--key <file...>', 'trusted ed25519 public key(s) (PEM)')
    .description('verify a package folder\'s signature against public keys, as a station requiring signatures does (local)')
    .action(async (dir: string, o: { key: string[] }) => {
      const signer = await verifyPackage(dir, { trusted: TrustedKeys.fromEntries(o.key), require: true });
      print({ verified: dir, ...signer });
    });
  addFleetPushOptions(models.command('push').argument('<dir>', 'package folder').description('upload a package; the station verifies its signature and checks it before it lands'))
    .action(async (dir: string, o: FleetPushCliOptions, cmd: Command) => {
      if (o.stations) return fleetPushAction(dir, o, packageForm); // a fleet: cli/fleet-rollout.ts
      const form = await packageForm(dir); // a missing folder is refused here, before the station is asked
      print(await api(connection(cmd), 'POST', '/api/models', form));
    });
  models.command('list').description('registered packages, live / shadow / rollback stack (a table; --json for scripts)')
    .option('--json', 'print the API\'s JSON instead of a table')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await api<{ models: ListedModel[] }>(connection(cmd), 'GET', '/api/models');
      if (o.json) print(r);
      else process.stdout.write(formatModelList(r.models));
    });
  models.command('history').description('every registry change: who and when (a table; --json for scripts)')
    .option('--json', 'print the API\'s JSON instead of a table')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await api<HistoryEvent[]>(connection(cmd), 'GET', '/api/models/history');
      if (o.json) print(r);
      else process.stdout.write(formatHistory(r));
    });
  models.command('show').argument('<name>').argument('<version>').description('one package with its manifest')
    .action(async (name: string, version: string, _o, cmd: Command) => print(await api(connection(cmd), 'GET', path(name, version))));
  models.command('shadow').argument('[name]').argument('[version]').option('--stop', 'stop shadowing')
    .description('run a model beside the live one on every frame')
    .action(async (name: string | undefined, version: string | undefined, o: { stop?: boolean }, cmd: Command) => {
      if (o.stop) return print(await api(connection(cmd), 'DELETE', '/api/models/shadow'));
      if (!name || !version) throw Object.assign(new Error('shadow NAME VERSION, or shadow --stop'), { code: 'INSPECTOR_USAGE' });
      print(await api(connection(cmd), 'POST', `${path(name, version)}/shadow`, {}));
    });
  models.command('report').argument('[name]').argument('[version]').description('shadow agreement report (--json for scripts)')
    .option('--json', 'print the API\'s JSON instead of the summary')
    .action(async (name: string | undefined, version: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const q = name && version ? `?name=${encodeURIComponent(name)}&version=${encodeURIComponent(version)}` : '';
      const r = await api<ShadowReportBody>(connection(cmd), 'GET', `/api/models/shadow/report${q}`);
      if (o.json) print(r);
      else process.stdout.write(formatShadowReport(r));
    });
  models.command('promote').argument('<name>').argument('<version>').description('validation gate, then a live swap')
    .action(async (name: string, version: string, _o, cmd: Command) => print(await api(connection(cmd), 'POST', `${path(name, version)}/promote`, {})));
  addFleetRollbackOptions(models.command('rollback').description('swap back to the previous live model (--stations FILE: every station of a fleet)'))
    .action(async (o: { stations?: string }, cmd: Command) => (o.stations ? fleetRollbackAction(o)
      : print(await api(connection(cmd), 'POST', '/api/models/rollback', {}))));
  models.command('delete').argument('<name>').argument('<version>').description('remove a package (not live, shadow or the rollback target)')
    .action(async (name: string, version: string, _o, cmd: Command) => print(await api(connection(cmd), 'DELETE', path(name, version))));
  return models;
}
