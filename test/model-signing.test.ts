/**
 * Signed model packages (issue 12): real ed25519 keys (node's crypto), real
 * package files, the real registry and lifecycle behind the real HTTP routes
 * (fastify.inject, logins and audit trail in a real review database), and a
 * real live ModelRunner (onnxruntime-node).
 *
 *  - the CLI: `keys create` + `models sign` + `models verify`, as processes;
 *  - unsigned, signed by an unknown key, tampered after signing (a byte of
 *    model.onnx, the manifest, the signature, a forged key id): each refused
 *    with its own code on push and on promotion, before any session is
 *    created, and the live model keeps serving the same scores;
 *  - a signed package is pushed and promoted, with the signer's key id in the
 *    registry history and the audit trail;
 *  - multipart names: `../../evil.onnx`, an unlisted name and two `model.onnx`
 *    parts are a 400 INSPECTOR_UPLOAD_NAME and nothing is stored anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner, type ModelRunnerOptions } from '../inspector/inference/model-runner.js';
import { resolveConfig } from '../inspector/station/config.js';
import { buildApp } from '../inspector/server/app.js';
import { RegistryState } from '../inspector/registry/registry-state.js';
import { ModelLifecycle, type LifecycleHost } from '../inspector/registry/lifecycle.js';
import { modelRpcHandlers } from '../inspector/registry/rpc-handlers.js';
import {
  SIGNATURE_FILE, TrustedKeys, generateSigningKey, keyIdOf, readPrivateKey, signPackage, signaturePolicy, verifyPackage,
} from '../inspector/registry/signing.js';
import { createPrivateKey } from 'node:crypto';
import { createKeyPair, keyIdOfFile } from '../inspector/cli/keys-command.js';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'inspector-signing-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of models/default/1.0.0 as `version` in `dir` (manifest edits only). */
function makePackage(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['model.onnx', 'manifest.json']) cpSync(join('models/default/1.0.0', f), join(dir, f));
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.version = version;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  return dir;
}

/** Flip one byte in the middle of a file (same length: only a hash can tell). */
function flipByte(path: string): void {
  const b = readFileSync(path);
  const i = b.length >> 1;
  b[i] = b[i]! ^ 0x01;
  writeFileSync(path, b);
}

function editManifest(dir: string, edit: (m: Record<string, any>) => void): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** Every file below `dir` (relative paths). */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1)).sort();
}

const cli = (...args: string[]) => run(process.execPath, ['bin/inspector.js', ...args], { encoding: 'utf8' });
const cliError = async (...args: string[]): Promise<string> => {
  const err = await cli(...args).then(() => null, (e: { stderr: string; code: number }) => e);
  expect(err, 'the command should fail').not.toBeNull();
  expect(err!.code).toBe(1);
  return err!.stderr;
};

// the station's key pair and a key nobody told the station about
const keysDir = join(work, 'keys');
let station: { keyId: string; privateKey: string; publicKey: string };
beforeAll(async () => { station = await createKeyPair(keysDir); });
const rogue = generateSigningKey();
const roguePriv = createPrivateKey(rogue.privatePem);

describe('CLI: keys create, models sign, models verify (each a process: slow on a loaded box)', () => {
  it('creates a key pair, signs a package with it; verify names a stranger\'s key as unknown', async () => {
    const dir = join(work, 'cli-keys');
    const created = JSON.parse((await cli('keys', 'create', '--out', dir, '--name', 'line3')).stdout);
    expect(created).toEqual({ keyId: expect.stringMatching(/^[0-9a-f]{16}$/), privateKey: join(dir, 'line3.pem'), publicKey: join(dir, 'line3.pub.pem') });
    expect(statSync(created.privateKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(created.publicKey, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    // the id is the public key's, from either file
    expect(keyIdOfFile(created.privateKey)).toBe(created.keyId);
    expect(keyIdOfFile(created.publicKey)).toBe(created.keyId);

    const pkg = makePackage(join(work, 'cli-pkg'), '5.0.0');
    const signed = JSON.parse((await cli('models', 'sign', pkg, '--key', created.privateKey)).stdout);
    expect(signed.keyId).toBe(created.keyId);
    const doc = JSON.parse(readFileSync(join(pkg, SIGNATURE_FILE), 'utf8'));
    expect(doc).toMatchObject({ algorithm: 'ed25519', keyId: created.keyId, package: { name: 'default', version: '5.0.0' } });
    expect(Object.keys(doc.files)).toEqual(['model.onnx']);
    expect(await verifyPackage(pkg, { trusted: TrustedKeys.fromEntries([created.publicKey]), require: true })).toMatchObject({ keyId: created.keyId });

    const roguePub = join(work, 'rogue.pub.pem');
    writeFileSync(roguePub, rogue.publicPem);
    expect(await cliError('models', 'verify', pkg, '--key', roguePub)).toMatch(/INSPECTOR_MODEL_KEY_UNKNOWN: .*signed by key [0-9a-f]{16}/);
  }, 240_000);

  it('keys are never overwritten; a broken package is refused with its own code and not signed', async () => {
    const before = readFileSync(station.privateKey, 'utf8');
    await expect(createKeyPair(keysDir)).rejects.toMatchObject({ code: 'INSPECTOR_SIGNING_KEY_INVALID', message: expect.stringMatching(/exists/) });
    expect(readFileSync(station.privateKey, 'utf8')).toBe(before);
    const pkg = makePackage(join(work, 'broken'), '5.1.0');
    flipByte(join(pkg, 'model.onnx'));
    await expect(signPackage(pkg, readPrivateKey(station.privateKey))).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH' });
    expect(existsSync(join(pkg, SIGNATURE_FILE))).toBe(false);
  });
});

describe('verifyPackage on real files', () => {
  let trusted: TrustedKeys;
  beforeAll(() => { trusted = TrustedKeys.fromEntries([station.publicKey]); });
  const required = () => ({ trusted, require: true });

  it('a good signature verifies; each way of breaking it has its code', async () => {
    const priv = readPrivateKey(station.privateKey);
    const fresh = async (name: string) => { const d = makePackage(join(work, 'v', name), '6.0.0'); await signPackage(d, priv); return d; };

    expect(await verifyPackage(await fresh('good'), required())).toMatchObject({ keyId: station.keyId });

    const unsigned = makePackage(join(work, 'v', 'unsigned'), '6.0.0');
    await expect(verifyPackage(unsigned, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_UNSIGNED', statusCode: 422 });
    expect(await verifyPackage(unsigned, { trusted, require: false })).toBeNull(); // allowed where not required

    const resigned = await fresh('resigned');
    editManifest(resigned, (m) => { m.decision.threshold = 0.99; });
    await signPackage(resigned, roguePriv); // a valid signature, by a key the station does not know
    await expect(verifyPackage(resigned, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_KEY_UNKNOWN', statusCode: 422 });
    // even where unsigned packages are allowed, a signature that is there must hold
    await expect(verifyPackage(resigned, { trusted, require: false })).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_KEY_UNKNOWN' });

    const model = await fresh('model-byte');
    flipByte(join(model, 'model.onnx'));
    await expect(verifyPackage(model, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_SIGNATURE_INVALID', message: expect.stringMatching(/model\.onnx changed after signing/) });

    const manifest = await fresh('manifest');
    editManifest(manifest, (m) => { m.decision.threshold = 0.99; });
    await expect(verifyPackage(manifest, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_SIGNATURE_INVALID', message: expect.stringMatching(/manifest\.json changed after signing/) });

    const sig = await fresh('signature');
    const doc = JSON.parse(readFileSync(join(sig, SIGNATURE_FILE), 'utf8'));
    doc.signedAt = '2000-01-01T00:00:00.000Z'; // any signed field
    writeFileSync(join(sig, SIGNATURE_FILE), JSON.stringify(doc));
    await expect(verifyPackage(sig, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_SIGNATURE_INVALID', message: expect.stringMatching(/does not verify/) });

    // a stranger's signature that claims the station's key id
    const forged = await fresh('forged');
    editManifest(forged, (m) => { m.decision.threshold = 0.99; });
    const f = await signPackage(forged, roguePriv);
    writeFileSync(join(forged, SIGNATURE_FILE), JSON.stringify({ ...f, keyId: station.keyId }));
    await expect(verifyPackage(forged, required())).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_SIGNATURE_INVALID' });
  }, 60_000);

  it('config: trusted keys as PEM text or file; a private key is refused; a config file requires signatures', () => {
    const pem = readFileSync(station.publicKey, 'utf8');
    expect(signaturePolicy({ trustedKeys: [pem, rogue.publicPem] }).trusted.ids.sort()).toEqual([station.keyId, rogue.keyId].sort());
    expect(() => signaturePolicy({ trustedKeys: [station.privateKey] })).toThrow(expect.objectContaining({ code: 'INSPECTOR_SIGNING_KEY_INVALID' }));
    expect(() => signaturePolicy({ trustedKeys: [join(work, 'nope.pem')] })).toThrow(expect.objectContaining({ code: 'INSPECTOR_SIGNING_KEY_INVALID' }));
    const file = join(work, 'station.json');
    writeFileSync(file, JSON.stringify({ registry: { trustedKeys: [station.publicKey] } }));
    expect(resolveConfig({}, file).registry).toMatchObject({ requireSignatures: true, trustedKeys: [station.publicKey] });
    writeFileSync(file, JSON.stringify({ registry: { requireSignatures: false } }));
    expect(resolveConfig({}, file).registry.requireSignatures).toBe(false);
    expect(resolveConfig({}).registry.requireSignatures).toBeUndefined(); // tests, demo, bench: unsigned packages allowed
  });
});

describe('a station requiring signatures: HTTP push and promotion', () => {
  const W = 1280, H = 1024;
  const root = join(work, 'registry');
  let app: FastifyInstance;
  let lc: ModelLifecycle;
  let live: ModelRunner;
  let token: string;
  /** runner options asked of the station: every ORT session of the lifecycle starts here */
  const sessions: string[] = [];
  const frame = new Uint8Array(W * H).map((_, i) => (i * 7) % 251);
  let liveScore: number;
  const ref = (version: string) => ({ name: 'default', version });

  /** A multipart body built by hand: names exactly as given. */
  function multipart(parts: Array<{ field?: string; name: string; data: Uint8Array }>): { payload: Buffer; headers: Record<string, string> } {
    const boundary = '----inspector-signing-test';
    const chunks: Buffer[] = [];
    for (const p of parts) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.field ?? p.name}"; filename="${p.name}"\r\n`
        + 'Content-Type: application/octet-stream\r\n\r\n'), Buffer.from(p.data), Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
  }
  const partsOf = (dir: string, names = ['manifest.json', 'model.onnx', SIGNATURE_FILE]) =>
    names.filter((n) => existsSync(join(dir, n))).map((name) => ({ name, data: readFileSync(join(dir, name)) }));
  const push = async (parts: Array<{ field?: string; name: string; data: Uint8Array }>) => {
    const { payload, headers } = multipart(parts);
    return app.inject({ method: 'POST', url: '/api/models', payload, headers: { ...headers, authorization: `Bearer ${token}` } });
  };
  const promote = (version: string) => app.inject({ method: 'POST', url: `/api/models/default/${version}/promote`, headers: { authorization: `Bearer ${token}` } });
  const audit = () => app.review.db.prepare("SELECT action, target, after_json FROM audit WHERE action LIKE 'model.%' ORDER BY id").all() as
    Array<{ action: string; target: string; after_json: string | null }>;

  /** The live model is the one it was: same runner object, same pointer, same scores, no session was created. */
  async function expectLiveUntouched(): Promise<void> {
    expect(lc.liveRunner).toBe(live);
    expect(lc.state.live).toBeNull(); // the station started on a package outside the registry: nothing was promoted
    expect(sessions).toEqual([]);
    expect((await live.infer(frame)).score).toBe(liveScore);
  }

  beforeAll(async () => {
    const config = resolveConfig({
      model: { providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1 },
      registry: { root, statePath: join(work, 'state.json'), trustedKeys: [station.publicKey], requireSignatures: true,
        goldenImages: 4, warmupFrames: 3, latencyBudgetMs: 60_000, accuracyMargin: 1 },
    });
    const options = (packageDir: string): ModelRunnerOptions => ({ packageDir, frame: { width: W, height: H }, providers: ['cpu'],
      intraOpNumThreads: 1, warmupRuns: 1, logger });
    live = await ModelRunner.create(options('models/default/1.0.0'));
    liveScore = (await live.infer(frame)).score;
    let current: unknown = live;
    const host = {
      config, logger, runId: 'signing-test',
      loop: { swapInference: async (next: unknown) => { const old = current; current = next; return old; }, shadow: null },
      store: { addShadow: () => undefined, shadowReport: async () => { throw new Error('unused'); } },
      images: { offer: () => null },
      runnerOptions: (packageDir: string) => { sessions.push(packageDir); return options(packageDir); },
      calibrationVersion: () => null,
      onLive: () => undefined,
    } as unknown as LifecycleHost;
    lc = new ModelLifecycle(host, RegistryState.open(config.registry.statePath), live, null);
    const handlers = modelRpcHandlers(lc);
    const view = {
      health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }),
      call: async <T>(method: string, args?: unknown) => handlers[method]!(args) as Promise<T>,
    };
    app = await buildApp({ view, logger: false, reviewDbPath: join(work, 'review.sqlite'), uiDir: join(work, 'none') });
    await app.review.accounts.create('mlalice', 'ml-password-1', 'ml');
    const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'mlalice', password: 'ml-password-1' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    token = (await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie }, payload: { name: 'cli', ttlDays: 1 } })).json().token;
    expect(token).toBeTruthy();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await lc?.liveRunner.close();
  });

  it('push: unsigned, signed by an unknown key, tampered after signing → each its own code (422), nothing lands', async () => {
    const priv = readPrivateKey(station.privateKey);
    const unsigned = makePackage(join(work, 'p', 'unsigned'), '2.0.0');
    const r1 = await push(partsOf(unsigned));
    expect([r1.statusCode, r1.json().code]).toEqual([422, 'INSPECTOR_MODEL_UNSIGNED']);

    const stranger = makePackage(join(work, 'p', 'stranger'), '2.0.0');
    await signPackage(stranger, roguePriv);
    const r2 = await push(partsOf(stranger));
    expect([r2.statusCode, r2.json().code]).toEqual([422, 'INSPECTOR_MODEL_KEY_UNKNOWN']);
    expect(r2.json().message).toContain(rogue.keyId);

    const model = makePackage(join(work, 'p', 'model'), '2.0.0');
    await signPackage(model, priv);
    flipByte(join(model, 'model.onnx'));
    const r3 = await push(partsOf(model));
    expect([r3.statusCode, r3.json().code]).toEqual([422, 'INSPECTOR_MODEL_SIGNATURE_INVALID']);

    const manifest = makePackage(join(work, 'p', 'manifest'), '2.0.0');
    await signPackage(manifest, priv);
    editManifest(manifest, (m) => { m.decision.threshold = 0.99; });
    const r4 = await push(partsOf(manifest));
    expect([r4.statusCode, r4.json().code]).toEqual([422, 'INSPECTOR_MODEL_SIGNATURE_INVALID']);

    expect(filesBelow(root)).toEqual([]); // not landed, staging cleaned
    expect(lc.history()).toEqual([]);
    // each refusal is in the audit trail with its code
    expect(audit().map((a) => [a.action, JSON.parse(a.after_json!).error])).toEqual([['model.refused', 'INSPECTOR_MODEL_UNSIGNED'],
      ['model.refused', 'INSPECTOR_MODEL_KEY_UNKNOWN'], ['model.refused', 'INSPECTOR_MODEL_SIGNATURE_INVALID'],
      ['model.refused', 'INSPECTOR_MODEL_SIGNATURE_INVALID']]);
    await expectLiveUntouched();
  }, 60_000);

  it('push: a signed package lands, with the signer\'s key id in the history and the audit trail', async () => {
    const priv = readPrivateKey(station.privateKey);
    for (const v of ['2.0.0', '2.1.0']) {
      const dir = makePackage(join(work, 'p', `good-${v}`), v);
      await signPackage(dir, priv);
      const res = await push(partsOf(dir));
      expect(res.statusCode).toBe(201);
      expect(res.json()).toEqual({ ...ref(v), signer: station.keyId });
    }
    expect(filesBelow(join(root, 'default', '2.0.0'))).toEqual(['manifest.json', 'model.onnx', SIGNATURE_FILE]);
    expect(lc.history().map((e) => [e.action, e.model?.version, e.signer])).toEqual([['push', '2.0.0', station.keyId], ['push', '2.1.0', station.keyId]]);
    const pushes = audit().filter((a) => a.action === 'model.push');
    expect(pushes.map((a) => [a.target, JSON.parse(a.after_json!).signer])).toEqual([['model:default@2.0.0', station.keyId], ['model:default@2.1.0', station.keyId]]);
    const history = await app.inject({ method: 'GET', url: '/api/models/history', headers: { authorization: `Bearer ${token}` } });
    expect(history.json().at(-1)).toMatchObject({ action: 'push', signer: station.keyId });
    await expectLiveUntouched();
  }, 60_000);

  it('promote: unsigned, unknown key, tampered on disk → each its own code, refused before any session, live model untouched', async () => {
    const priv = readPrivateKey(station.privateKey);
    // packages that reached the registry folder without a push (copied in, or changed on disk after one)
    makePackage(join(root, 'default', '3.0.0'), '3.0.0');
    const stranger = makePackage(join(root, 'default', '3.1.0'), '3.1.0');
    await signPackage(stranger, roguePriv);
    flipByte(join(root, 'default', '2.1.0', 'model.onnx')); // pushed signed, changed since
    const manifest = makePackage(join(root, 'default', '3.2.0'), '3.2.0');
    await signPackage(manifest, priv);
    editManifest(manifest, (m) => { m.decision.threshold = 0.99; });

    const cases: Array<[string, string]> = [['3.0.0', 'INSPECTOR_MODEL_UNSIGNED'], ['3.1.0', 'INSPECTOR_MODEL_KEY_UNKNOWN'],
      ['2.1.0', 'INSPECTOR_MODEL_SIGNATURE_INVALID'], ['3.2.0', 'INSPECTOR_MODEL_SIGNATURE_INVALID']];
    for (const [version, code] of cases) {
      const res = await promote(version);
      expect([version, res.statusCode, res.json().code]).toEqual([version, 422, code]);
      expect(lc.history().at(-1)).toMatchObject({ action: 'refuse', actor: 'mlalice', model: ref(version), detail: expect.stringContaining(code) });
      await expectLiveUntouched();
    }
    const refused = audit().filter((a) => a.action === 'model.refused' && a.target !== 'model:push');
    expect(refused.map((a) => a.target)).toEqual(cases.map(([v]) => `model:default@${v}`));
    // shadow is a session too: refused the same way
    const shadow = await app.inject({ method: 'POST', url: '/api/models/default/3.0.0/shadow', headers: { authorization: `Bearer ${token}` } });
    expect([shadow.statusCode, shadow.json().code]).toEqual([422, 'INSPECTOR_MODEL_UNSIGNED']);
    await expectLiveUntouched();
  }, 60_000);

  it('promote: the signed package passes, goes live, and the promotion records its signer', async () => {
    const res = await promote('2.0.0');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, signer: station.keyId });
    expect(sessions.length).toBeGreaterThan(0); // this time the gate and the new live model did create sessions
    expect(lc.state.live).toEqual(ref('2.0.0'));
    expect(lc.liveRunner).not.toBe(live);
    expect(lc.liveRunner.modelVersion).toBe('2.0.0');
    expect(lc.history().at(-1)).toMatchObject({ action: 'promote', model: ref('2.0.0'), signer: station.keyId });
    const promoted = audit().filter((a) => a.action === 'model.promote');
    expect(promoted.map((a) => [a.target, JSON.parse(a.after_json!).signer])).toEqual([['model:default@2.0.0', station.keyId]]);
  }, 120_000);

  it('multipart names: a path, an unlisted name, a name sent twice → 400 INSPECTOR_UPLOAD_NAME; nothing is written anywhere', async () => {
    const dir = makePackage(join(work, 'p', 'names'), '4.0.0');
    await signPackage(dir, readPrivateKey(station.privateKey));
    const good = partsOf(dir);
    const evil = { name: '../../evil.onnx', data: readFileSync(join(dir, 'model.onnx')) };
    const before = filesBelow(work).filter((f) => !f.startsWith('review.sqlite'));
    const bodies: Array<[string, Array<{ field?: string; name: string; data: Uint8Array }>]> = [
      ['a path first', [evil, ...good]],
      ['a path after the package', [...good, evil]],
      ['a path in the field name only', [...good, { field: '../../evil.onnx', name: 'evil.onnx', data: evil.data }]],
      ['an unlisted name after the manifest', [...good, { name: 'evil.onnx', data: evil.data }]],
      ['an unlisted name before the manifest', [{ name: 'evil.onnx', data: evil.data }, ...good]],
      ['model.onnx twice', [...good, { name: 'model.onnx', data: evil.data }]],
    ];
    for (const [what, parts] of bodies) {
      const res = await push(parts);
      expect([what, res.statusCode, res.json().code]).toEqual([what, 400, 'INSPECTOR_UPLOAD_NAME']);
    }
    const after = filesBelow(work).filter((f) => !f.startsWith('review.sqlite'));
    expect(after).toEqual(before);
    expect(after.filter((f) => f.includes('evil'))).toEqual([]);
    expect(existsSync(join(root, 'default', '4.0.0'))).toBe(false);
    // the same package with proper names lands
    const ok = await push(good);
    expect([ok.statusCode, ok.json()]).toEqual([201, { ...ref('4.0.0'), signer: station.keyId }]);
  }, 60_000);
});

describe('start-up', () => {
  const ref = (version: string) => ({ name: 'default', version });
  it('the registry\'s live package is verified before it loads; the configured package is the config\'s choice', async () => {
    const root = join(work, 'startup');
    makePackage(join(root, 'default', '1.0.0'), '1.0.0');
    makePackage(join(root, 'default', '1.5.0'), '1.5.0'); // unsigned, but the state says it is live
    const state = RegistryState.open(join(work, 'startup-state.json'));
    state.change({ actor: 'x', action: 'promote', model: ref('1.5.0') }, (d) => { d.live = ref('1.5.0'); });
    const config = (require: boolean) => resolveConfig({ model: { packageDir: join(root, 'default', '1.0.0') },
      registry: { root, trustedKeys: [station.publicKey], requireSignatures: require } });
    await expect(ModelLifecycle.initialPackage(config(true), state)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_UNSIGNED' });
    expect(await ModelLifecycle.initialPackage(config(false), state)).toEqual({ dir: join(root, 'default', '1.5.0'), ref: ref('1.5.0') });
    await signPackage(join(root, 'default', '1.5.0'), readPrivateKey(station.privateKey));
    expect(await ModelLifecycle.initialPackage(config(true), state)).toEqual({ dir: join(root, 'default', '1.5.0'), ref: ref('1.5.0') });
    // the configured package itself (unsigned) is what the state points at: started as configured
    state.change({ actor: 'x', action: 'rollback', model: ref('1.0.0') }, (d) => { d.live = ref('1.0.0'); });
    expect(await ModelLifecycle.initialPackage(config(true), state)).toEqual({ dir: join(root, 'default', '1.0.0'), ref: ref('1.0.0') });
  });
});
