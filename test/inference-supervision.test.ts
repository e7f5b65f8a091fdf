/**
 * The supervised inference worker (model-runner.ts over core/supervised-worker.ts),
 * against real onnxruntime-node and a tiny real package: a worker that really hangs
 * (Atomics.wait in the worker thread) misses its deadline and is respawned; one that
 * really exits is respawned; deaths, restarts and timeouts are counted. No timing is
 * asserted: deadlines are generous and tests wait on the runner's events.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner, type ModelRunnerOptions } from '../inspector/inference/model-runner.js';
import { jsPreprocess, jsTiny, makeFrame, manifestFor, maxAbsDiff, sha, tinyModel, type TinySpec } from './helpers/tiny-models.js';
import { sleep } from './helpers/wait.js';

const log = logger.child({ mod: 'inference-supervision-test' });
const work = mkdtempSync(join(tmpdir(), 'inspector-supervision-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const spec: TinySpec = { h: 32, w: 40, mapH: 8, mapW: 10 };
const fw = 160, fh = 128;
const manifest = manifestFor(spec);
const packageDir = ((): string => {
  const dir = join(work, 'pkg');
  mkdirSync(dir);
  const model = tinyModel(spec);
  writeFileSync(join(dir, 'model.onnx'), model);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, sha256: sha(model) }, null, 2));
  return dir;
})();

/** generous: a tiny model answers in milliseconds, a hung worker never */
const DEADLINE_MS = 5000;
const runners: ModelRunner[] = [];
afterEach(async () => { await Promise.all(runners.splice(0).map((r) => r.close())); });

async function runner(over: Partial<ModelRunnerOptions> = {}): Promise<ModelRunner> {
  const r = await ModelRunner.create({
    packageDir, frame: { width: fw, height: fh }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log,
    testHooks: true, deadlineMs: DEADLINE_MS, restartBackoff: { initialMs: 20, jitter: 0 }, ...over,
  });
  runners.push(r);
  return r;
}

/** infer() answers, with the known score and map of this frame, in the runner's shared map. */
async function expectRightAnswer(r: ModelRunner, seed: number): Promise<void> {
  const frame = makeFrame(fw, fh, seed);
  const got = await r.infer(frame);
  const ref = jsTiny(jsPreprocess(frame, fw, fh, manifest, 'area'), spec);
  expect(Math.abs(got.score - ref.score)).toBeLessThan(1e-5);
  expect(got.map).toBe(r.map);
  expect(maxAbsDiff(got.map, ref.map)).toBeLessThan(1e-5);
}

type Death = { reason: string; generation: number; deaths: number };

/** The next `event` of the runner (events.once would reject on the runner's 'error', which each death emits). */
const next = <T>(r: ModelRunner, event: string): Promise<T> => new Promise((resolve) => r.once(event, resolve));

describe('ModelRunner supervision', () => {
  it('a hung worker: infer() rejects with INSPECTOR_INFERENCE_TIMEOUT, the worker is respawned, the next infer() is right', async () => {
    const r = await runner(); // transfer transport: the frame buffer is lost with the killed worker
    const deaths: Death[] = [];
    const errors: Array<Error & { code?: string }> = [];
    r.on('worker-death', (d: Death) => deaths.push(d));
    r.on('error', (e: Error) => errors.push(e));
    await expectRightAnswer(r, 5);
    expect([r.deadlineMs, r.generation, r.workerState]).toEqual([DEADLINE_MS, 1, 'ready']);

    const respawned = next(r, 'worker-ready');
    r.debugHang(600_000); // the worker thread blocks, as in a session.run that never returns
    await expect(r.infer(makeFrame(fw, fh, 6))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_TIMEOUT' });
    expect(r.workerState).toBe('restarting');
    // while it is respawned, calls fail at once (the part loop rejects the part)
    await expect(r.infer(makeFrame(fw, fh, 6))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_WORKER_EXITED' });
    expect(await respawned).toEqual({ generation: 2, restarts: 1 });

    expect(r.workerState).toBe('ready');
    await expectRightAnswer(r, 7);
    await expectRightAnswer(r, 8);
    expect(r.supervision).toEqual({ deaths: 1, restarts: 1, timeouts: 1 });
    expect(deaths).toEqual([{ reason: `killed: inference missed its ${DEADLINE_MS} ms deadline`, generation: 1, deaths: 1 }]);
    expect(errors.map((e) => e.code)).toEqual(['INSPECTOR_INFERENCE_WORKER_EXITED']);
    const bench = await r.benchBare(3); // the respawned worker serves every request kind
    expect(bench.samples).toHaveLength(3);
  });

  it('a worker that exits is respawned into the same shared map; pending calls fail, infer() works again', async () => {
    const r = await runner({ transport: 'shared' });
    const deaths: Death[] = [];
    r.on('worker-death', (d: Death) => deaths.push(d));
    r.on('error', () => undefined);
    await expectRightAnswer(r, 1);

    let respawned = next(r, 'worker-ready');
    r.debugCrash(); // process.exit(1) inside the worker, before it reads the next frame
    await expect(r.infer(makeFrame(fw, fh, 2))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_WORKER_EXITED' });
    expect(await respawned).toEqual({ generation: 2, restarts: 1 });
    await expectRightAnswer(r, 3);

    respawned = next(r, 'worker-ready');
    r.simulateWorkerCrash(); // an uncaught exception in the worker
    expect(await respawned).toEqual({ generation: 3, restarts: 2 });
    await expectRightAnswer(r, 4);

    expect(deaths.map((d) => [d.generation, d.reason.replace(/: inference worker crash.*/s, '')]))
      .toEqual([[1, 'exited with code 1'], [2, 'uncaught error']]);
    expect(r.supervision).toEqual({ deaths: 2, restarts: 2, timeouts: 0 });
  });

  it('without testHooks the hooks refuse; a healthy runner never times out', async () => {
    const r = await runner({ testHooks: false, deadlineMs: undefined });
    expect(r.deadlineMs).toBe(1000);
    expect(() => r.debugHang(10)).toThrow(expect.objectContaining({ code: 'INSPECTOR_CONFIG_INVALID' }));
    expect(() => r.debugCrash()).toThrow(expect.objectContaining({ code: 'INSPECTOR_CONFIG_INVALID' }));
    for (let seed = 10; seed < 15; seed++) await expectRightAnswer(r, seed);
    expect(r.supervision).toEqual({ deaths: 0, restarts: 0, timeouts: 0 });
    expect(r.generation).toBe(1);
    await expect(ModelRunner.create({ packageDir, frame: { width: fw, height: fh }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log, deadlineMs: 0 }))
      .rejects.toMatchObject({ code: 'INSPECTOR_CONFIG_INVALID' });
  });

  it('close() while a respawn is pending: no worker comes back, calls reject INSPECTOR_INFERENCE_CLOSED', async () => {
    const r = await runner({ restartBackoff: { initialMs: 100, jitter: 0 } });
    r.on('error', () => undefined);
    const died = next(r, 'worker-death');
    r.debugCrash();
    await died;
    await r.close();
    expect(r.workerState).toBe('closed');
    await sleep(500);
    expect([r.workerState, r.generation, r.supervision.restarts]).toEqual(['closed', 1, 0]);
    await expect(r.infer(makeFrame(fw, fh))).rejects.toMatchObject({ code: 'INSPECTOR_INFERENCE_CLOSED' });
  });
});
