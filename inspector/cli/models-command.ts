/**
 * `inspector models …`: the model registry through the station's HTTP API.
 *
 *   inspector models sign DIR --key key.pem        sign a package folder (writes DIR/signature.json; local, no station)
 *   inspector models verify DIR --key key.pub.pem  verify a package folder's signature against public keys (local)
 *   inspector models push DIR                      upload a package folder (manifest.json, model.onnx, signature.json, listed files)
 *   inspector models list | history
 *   inspector models show NAME VERSION
 *   inspector models shadow NAME VERSION | shadow --stop
 *   inspector models report [NAME VERSION]         shadow agreement report
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
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { MANIFEST_FILE, MODEL_FILE, parseManifest } from '../inference/model-package.js';
import { SIGNATURE_FILE, TrustedKeys, readPrivateKey, signPackage, verifyPackage } from '../registry/signing.js';

// the station's HTTP(S) client (--url, --token, --ca, --fingerprint; clear words on failure) and the fleet rollout
import { addConnectionOptions, api, connection } from './station-client.js';
import { addFleetPushOptions, addFleetRollbackOptions, fleetPushAction, fleetRollbackAction, type FleetPushCliOptions } from './fleet-rollout.js';
export { api };

/**
 * The multipart form for a package folder: manifest.json first (the station checks every later
 * part against it), model.onnx, signature.json when there is one, and the files the manifest lists.
 */
export async function packageForm(dir: string): Promise<FormData> {
  const manifest = parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE));
  const form = new FormData();
  const signed = existsSync(join(dir, SIGNATURE_FILE)) ? [SIGNATURE_FILE] : [];
  for (const f of [MANIFEST_FILE, MODEL_FILE, ...signed, ...(manifest.files ?? [])]) {
    form.append(f, new Blob([await readFile(join(dir, f))]), f);
  }
  return form;
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
    .action(async (dir: string, o: FleetPushCliOptions, cmd: Command) => (o.stations ? fleetPushAction(dir, o, packageForm) // a fleet: cli/fleet-rollout.ts
      : print(await api(connection(cmd), 'POST', '/api/models', await packageForm(dir)))));
  models.command('list').description('registered packages, live / shadow / rollback stack')
    .action(async (_o, cmd: Command) => {
      const r = await api<{ models: Array<{ name: string; version: string; live: boolean; shadow: boolean; previous: number; kind: string | null; threshold: number | null }> }>(connection(cmd), 'GET', '/api/models');
      for (const m of r.models) {
        const tags = [m.live ? 'LIVE' : '', m.shadow ? 'SHADOW' : '', m.previous ? `rollback#${m.previous}` : ''].filter(Boolean).join(' ');
        process.stdout.write(`${m.name}@${m.version}\t${m.kind ?? '?'}\tthreshold ${m.threshold ?? '?'}\t${tags}\n`);
      }
    });
  models.command('history').description('every registry change: who and when')
    .action(async (_o, cmd: Command) => print(await api(connection(cmd), 'GET', '/api/models/history')));
  models.command('show').argument('<name>').argument('<version>').description('one package with its manifest')
    .action(async (name: string, version: string, _o, cmd: Command) => print(await api(connection(cmd), 'GET', path(name, version))));
  models.command('shadow').argument('[name]').argument('[version]').option('--stop', 'stop shadowing')
    .description('run a model beside the live one on every frame')
    .action(async (name: string | undefined, version: string | undefined, o: { stop?: boolean }, cmd: Command) => {
      if (o.stop) return print(await api(connection(cmd), 'DELETE', '/api/models/shadow'));
      if (!name || !version) throw Object.assign(new Error('shadow NAME VERSION, or shadow --stop'), { code: 'INSPECTOR_USAGE' });
      print(await api(connection(cmd), 'POST', `${path(name, version)}/shadow`, {}));
    });
  models.command('report').argument('[name]').argument('[version]').description('shadow agreement report')
    .action(async (name: string | undefined, version: string | undefined, _o, cmd: Command) => {
      const q = name && version ? `?name=${encodeURIComponent(name)}&version=${encodeURIComponent(version)}` : '';
      print(await api(connection(cmd), 'GET', `/api/models/shadow/report${q}`));
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
