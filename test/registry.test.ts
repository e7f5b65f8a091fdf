/**
 * The registry without a running line: packages on disk, the state file, the
 * validation gate's latency check on a real runner, and the HTTP API + CLI
 * client (real Fastify on loopback, real review database for logins and the
 * audit trail, the station side answered by the real RPC handlers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { logger } from '../inspector/core/logger.js';
import { ModelRegistry } from '../inspector/registry/model-registry.js';
import { RegistryState } from '../inspector/registry/registry-state.js';
import { loadGoldenSet } from '../inspector/registry/golden-set.js';
import { latencyCheck, runGate, scoreGolden } from '../inspector/registry/validation-gate.js';
import { ModelLifecycle, type LifecycleHost } from '../inspector/registry/lifecycle.js';
import { modelRpcHandlers } from '../inspector/registry/rpc-handlers.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { resolveConfig } from '../inspector/station/config.js';
import { buildApp } from '../inspector/server/app.js';
import { api, packageForm } from '../inspector/cli/models-command.js';

const work = mkdtempSync(join(tmpdir(), 'inspector-registry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of models/default/1.0.0 in `dir` as `version` (manifest edits only). */
function copyDefault(dir: string, version: string, edit: (m: Record<string, any>) => void = () => undefined): string {
  cpSync('models/default/1.0.0', dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.version = version;
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
  return dir;
}

describe('registry on disk', () => {
  const reg = new ModelRegistry(join(work, 'reg1'));

  it('adds a checked package as <root>/<name>/<version>/, refuses duplicates and corrupt ones, removes', async () => {
    const { ref } = await reg.addFrom(copyDefault(join(work, 'src-a'), '2.0.0'));
    expect(ref).toEqual({ name: 'default', version: '2.0.0' });
    expect(existsSync(join(reg.root, 'default', '2.0.0', 'model.onnx'))).toBe(true);
    await expect(reg.addFrom(copyDefault(join(work, 'src-b'), '2.0.0'))).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_EXISTS' });
    const bad = copyDefault(join(work, 'src-c'), '2.1.0');
    writeFileSync(join(bad, 'model.onnx'), Buffer.concat([readFileSync(join(bad, 'model.onnx')), Buffer.from([7])]));
    await expect(reg.addFrom(bad)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH' });
    expect(await reg.has({ name: 'default', version: '2.1.0' })).toBe(false);
    expect((await reg.list()).map((e) => e.version)).toEqual(['2.0.0']);
    await reg.remove(ref);
    expect(await reg.list()).toEqual([]);
    await expect(reg.remove(ref)).rejects.toMatchObject({ code: 'INSPECTOR_MODEL_NOT_FOUND' });
  });

  it('state: every change is recorded with who and when, written atomically, read back; a corrupt file is coded', () => {
    const path = join(work, 'state.json');
    const s = RegistryState.open(path);
    s.change({ actor: 'ml-alice', action: 'promote', model: { name: 'a', version: '1.0.0' } }, (d) => { d.live = { name: 'a', version: '1.0.0' }; });
    const again = RegistryState.open(path);
    expect(again.live).toEqual({ name: 'a', version: '1.0.0' });
    expect(again.history[0]).toMatchObject({ actor: 'ml-alice', action: 'promote' });
    expect(Date.parse(again.history[0]!.at)).toBeGreaterThan(0);
    writeFileSync(path, '{"version":1,"live":7}');
    expect(() => RegistryState.open(path)).toThrow(expect.objectContaining({ code: 'INSPECTOR_REGISTRY_STATE' }));
  });
});

describe('validation gate on a real runner', () => {
  it('refuses on latency when the P99 exceeds the budget, and reports accuracy against the live model', async () => {
    const golden = await loadGoldenSet('test-images/test', { width: 1280, height: 1024 }, 6);
    expect(golden.images.filter((i) => i.label === 'good').length).toBe(3);
    const create = () => ModelRunner.create({ packageDir: 'models/default/1.0.0', frame: { width: 1280, height: 1024 },
      providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 2, logger });
    const runner = await create();
    const copy = await create(); // an unchanged copy of the live model, as the station loads it beside the candidate
    try {
      const live = await scoreGolden(runner, golden);
      expect(live.accuracy).toBe(1);
      const settings = { providers: ['cpu'], latencyRuns: 10, accuracyMargin: 0.02, latencyMargin: 0.5, latencySlackMs: 2 };
      const tight = await runGate({ name: 'default', version: '1.0.0' }, runner, golden, { provider: 'cpu', accuracy: live }, { ...settings, latencyBudgetMs: 0.001 });
      expect(tight.ok).toBe(false);
      expect(tight.reasons).toHaveLength(1);
      expect(tight.reasons[0]).toMatch(/^latency: P99 .* exceeds the budget of 0.001 ms/);
      expect(tight.checks.find((c) => c.check === 'latency')!.figure).toMatch(/^P99 \d+\.\d\d ms, limit 0\.00 ms$/);
      const roomy = await runGate({ name: 'default', version: '1.0.0' }, runner, golden, { provider: 'cpu', accuracy: live }, { ...settings, latencyBudgetMs: 60_000 });
      expect(roomy.ok).toBe(true);
      expect(roomy.accuracy).toMatchObject({ candidate: 1, live: 1, images: 6 });
      // the copy timed against the live model in the same run (interleaved): same model, same load, within the margin
      const same = await runGate({ name: 'default', version: '1.0.0' }, copy, golden, { provider: 'cpu', accuracy: live, scorer: runner },
        { ...settings, latencyRuns: 40, latencyBudgetMs: 60_000 });
      expect(same.reasons).toEqual([]);
      expect(same.latency!.live).not.toBeNull();
      expect(same.latency!.limitMs).toBeCloseTo(same.latency!.live!.p99Ms * 1.5 + 2, 6);
      expect(same.checks.find((c) => c.check === 'latency')!.detail).toMatch(/no slower than live P99 .* measured in the same run/);
      // a candidate on a worse provider than the live one is refused at the load check
      const worse = await runGate({ name: 'default', version: '1.0.0' }, runner, golden, { provider: 'cuda', accuracy: live },
        { ...settings, providers: ['cuda', 'cpu'], latencyBudgetMs: 60_000 });
      expect(worse.reasons[0]).toMatch(/^load: loaded on cpu only; the live model runs on cuda/);
    } finally {
      await runner.close();
      await copy.close();
    }
  }, 120_000);

  it('latency check: the candidate against the live model of the same run (margin + slack) and the absolute budget', () => {
    const settings = { providers: ['cpu'], latencyRuns: 100, accuracyMargin: 0.02, latencyMargin: 0.25, latencySlackMs: 1, latencyBudgetMs: 50 };
    // a busy machine: both slow, the candidate as slow as the live model: passes although far above 5 ms
    expect(latencyCheck(settings, { p50: 9, p99: 30 }, { p50: 9, p99: 29 }).check.ok).toBe(true);
    // slower than live x 1.25 + 1 ms: refused, and says so with both figures
    const slow = latencyCheck(settings, { p50: 9, p99: 40 }, { p50: 9, p99: 29 });
    expect(slow.check.ok).toBe(false);
    expect(slow.figures.limitMs).toBeCloseTo(37.25, 9);
    expect(slow.check.figure).toBe('P99 40.00 ms (live 29.00 ms), limit 37.25 ms');
    expect(slow.check.detail).toMatch(/and slower than live P99 29.00 ms measured in the same run x 1.25 \+ 1 ms = 37.25 ms/);
    // as fast as live but over the absolute budget: refused
    const over = latencyCheck(settings, { p50: 40, p99: 60 }, { p50: 40, p99: 60 });
    expect(over.check.ok).toBe(false);
    expect(over.check.detail).toMatch(/exceeds the budget of 50 ms/);
    // no live model: the budget alone
    expect(latencyCheck(settings, { p50: 1, p99: 49 }, null).check.ok).toBe(true);
  });
});

describe('HTTP API and CLI client', () => {
  let app: FastifyInstance;
  let url: string;
  let token: string;
  let operatorToken: string;
  const root = join(work, 'reg-http');

  beforeAll(async () => {
    const config = resolveConfig({ registry: { root, statePath: join(work, 'http-state.json') } });
    const host = { config, logger } as unknown as LifecycleHost; // list/push/show/delete need no running line
    const lc = new ModelLifecycle(host, RegistryState.open(config.registry.statePath), null as unknown as ModelRunner, null);
    const handlers = modelRpcHandlers(lc);
    const view = {
      health: async () => { throw new Error('unused'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }),
      call: async <T>(method: string, args?: unknown) => handlers[method]!(args) as Promise<T>,
    };
    app = await buildApp({ view, logger: false, reviewDbPath: join(work, 'review.sqlite'), uiDir: join(work, 'none') });
    await app.review.accounts.create('mlalice', 'ml-password-1', 'ml');
    await app.review.accounts.create('opbob', 'op-password-1', 'operator');
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    const tokenFor = async (username: string, password: string): Promise<string> => {
      const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
      const cookie = String(res.headers['set-cookie']).split(';')[0]!;
      return (await app.inject({ method: 'POST', url: '/api/tokens', headers: { cookie }, payload: { name: 'cli', ttlDays: 1 } })).json().token;
    };
    token = await tokenFor('mlalice', 'ml-password-1');
    operatorToken = await tokenFor('opbob', 'op-password-1');
  });
  afterAll(async () => { await app?.close(); });

  it('pushes a package folder (multipart), lists and shows it; the change is audited with who did it', async () => {
    const form = await packageForm(copyDefault(join(work, 'http-a'), '3.0.0'));
    expect(await api({ url, token }, 'POST', '/api/models', form)).toEqual({ name: 'default', version: '3.0.0', signer: null }); // unsigned: allowed (not required here)
    const list = await api<{ models: Array<{ version: string; live: boolean }> }>({ url, token: operatorToken }, 'GET', '/api/models');
    expect(list.models.map((m) => m.version)).toEqual(['3.0.0']);
    const one = await api<{ manifest: { version: string } }>({ url, token }, 'GET', '/api/models/default/3.0.0');
    expect(one.manifest.version).toBe('3.0.0');
    const audit = app.review.db.prepare("SELECT actor, action, target FROM audit WHERE action LIKE 'model.%'").all();
    expect(audit).toEqual([{ actor: 'mlalice', action: 'model.push', target: 'model:default@3.0.0' }]);
    const history = await api<Array<{ actor: string; action: string }>>({ url, token }, 'GET', '/api/models/history');
    expect(history.at(-1)).toMatchObject({ actor: 'mlalice', action: 'push' });
  });

  it('refuses a corrupt upload with the package code (422) and leaves nothing behind', async () => {
    const dir = copyDefault(join(work, 'http-b'), '3.1.0');
    writeFileSync(join(dir, 'model.onnx'), Buffer.from('not onnx'));
    const err = await api({ url, token }, 'POST', '/api/models', await packageForm(dir)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INSPECTOR_MODEL_HASH_MISMATCH' });
    expect(existsSync(join(root, 'default', '3.1.0'))).toBe(false);
  });

  it('model changes need the ml role; deletion is audited', async () => {
    const denied = await api({ url, token: operatorToken }, 'DELETE', '/api/models/default/3.0.0').catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: expect.stringMatching(/^INSPECTOR_/) });
    expect(existsSync(join(root, 'default', '3.0.0'))).toBe(true);
    await api({ url, token }, 'DELETE', '/api/models/default/3.0.0');
    expect(existsSync(join(root, 'default', '3.0.0'))).toBe(false);
    const missing = await api({ url, token }, 'GET', '/api/models/default/3.0.0').catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'INSPECTOR_MODEL_NOT_FOUND' });
  });
});
