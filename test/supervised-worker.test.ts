/**
 * core/supervised-worker.ts against a tiny real worker (helpers/supervised-test-worker.ts):
 * ready handshake, start failures, death → restart with backoff, kill() of a hung
 * worker, close() for good. No timing is asserted: tests wait on events, and the
 * backoff is checked through the delays the supervisor computes (jitter 0).
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SupervisedWorker, type SupervisedWorkerOptions } from '../inspector/core/supervised-worker.js';
import type { FromTestWorker, TestWorkerData } from './helpers/supervised-test-worker.js';
import { sleep } from './helpers/wait.js';

const WORKER = new URL('./helpers/supervised-test-worker.ts', import.meta.url);
type Ready = Extract<FromTestWorker, { t: 'ready' }>;
type Death = { reason: string; generation: number; deaths: number };

const open: SupervisedWorker<Ready>[] = [];
afterEach(async () => { await Promise.all(open.splice(0).map((sw) => sw.close())); });

function make(mode: (start: number) => TestWorkerData['mode'], over: Partial<SupervisedWorkerOptions<Ready>> = {}): SupervisedWorker<Ready> {
  const sw = new SupervisedWorker<Ready>({
    name: 'test', url: WORKER,
    workerData: (start): TestWorkerData => ({ mode: mode(start), start }),
    startError: (m) => ((m as FromTestWorker).t === 'error' ? new Error((m as { message: string }).message) : undefined),
    backoff: { initialMs: 10, maxMs: 40, factor: 2, jitter: 0, resetAfterMs: 600_000 },
    ...over,
  });
  open.push(sw);
  return sw;
}

/** Resolves with the 'restarted' event of `generation`. */
const restartedAs = (sw: SupervisedWorker<Ready>, generation: number): Promise<{ generation: number; restarts: number }> =>
  new Promise((resolve) => {
    const on = (r: { generation: number; restarts: number }): void => { if (r.generation === generation) { sw.off('restarted', on); resolve(r); } };
    sw.on('restarted', on);
  });

async function echo(sw: SupervisedWorker<Ready>, v: number): Promise<unknown[]> {
  const got = once(sw, 'message');
  expect(sw.post({ t: 'echo', v })).toBe(true);
  return got;
}

describe('SupervisedWorker', () => {
  it('ready handshake: start() resolves with the ready message; messages carry the generation', async () => {
    const sw = make(() => 'ok');
    const readyEvent = once(sw, 'ready');
    expect(sw.state).toBe('starting');
    const ready = await sw.start();
    expect(ready).toMatchObject({ t: 'ready', start: 0 });
    expect(await readyEvent).toEqual([ready, { generation: 1, restart: false }]);
    expect([sw.state, sw.generation, sw.deaths, sw.restarts, sw.lastDeathReason]).toEqual(['ready', 1, 0, 0, null]);
    expect(await echo(sw, 42)).toEqual([{ t: 'echo', v: 42, start: 0 }, 1]);
  });

  it('a start error or no ready in time fails start(); nothing is restarted', async () => {
    const failing = make(() => 'fail');
    await expect(failing.start()).rejects.toThrow('test worker: start refused');
    expect([failing.state, failing.deaths, failing.generation, failing.worker]).toEqual(['closed', 0, 1, null]);

    const silent = make(() => 'silent', { startTimeoutMs: 1500 });
    await expect(silent.start()).rejects.toMatchObject({ code: 'INSPECTOR_WORKER_START', message: expect.stringMatching(/no ready message within 1500 ms/) });
    expect([silent.state, silent.deaths, silent.generation]).toEqual(['closed', 0, 1]);
    await sleep(200);
    expect(silent.generation).toBe(1);
  });

  it('each death is counted and followed by a restart; the backoff grows up to maxMs', async () => {
    // start 0 serves; starts 1..3 die right after their ready; start 4 serves
    const sw = make((start) => (start >= 1 && start <= 3 ? 'exit-after-ready' : 'ok'));
    const deaths: Death[] = [];
    const delays: number[] = [];
    sw.on('death', (d: Death) => deaths.push(d));
    sw.on('restarting', (r: { delayMs: number }) => delays.push(r.delayMs));
    await sw.start();
    const back = restartedAs(sw, 5);
    expect(sw.post({ t: 'exit', code: 7 })).toBe(true);
    expect(await back).toEqual({ generation: 5, restarts: 4 });
    expect(deaths.map((d) => d.reason)).toEqual(['exited with code 7', 'exited with code 3', 'exited with code 3', 'exited with code 3']);
    expect(deaths.map((d) => d.generation)).toEqual([1, 2, 3, 4]);
    expect(delays).toEqual([10, 20, 40, 40]);
    expect([sw.state, sw.deaths, sw.restarts, sw.lastDeathReason]).toEqual(['ready', 4, 4, 'exited with code 3']);
    expect(await echo(sw, 1)).toEqual([{ t: 'echo', v: 1, start: 4 }, 5]);
  });

  it('a failed restart counts as a death and backs off further', async () => {
    const sw = make((start) => (start === 1 ? 'fail' : 'ok'));
    const deaths: Death[] = [];
    const delays: number[] = [];
    sw.on('death', (d: Death) => deaths.push(d));
    sw.on('restarting', (r: { delayMs: number }) => delays.push(r.delayMs));
    await sw.start();
    const back = restartedAs(sw, 3);
    sw.post({ t: 'exit', code: 0 });
    await back;
    expect(deaths.map((d) => d.reason)).toEqual(['exited with code 0', 'test worker: start refused']);
    expect(delays).toEqual([10, 20]);
    expect([sw.deaths, sw.restarts]).toEqual([2, 1]);
    expect(await echo(sw, 2)).toEqual([{ t: 'echo', v: 2, start: 2 }, 3]);
  });

  it('kill() ends a hung worker, which is restarted; an uncaught error is a death too', async () => {
    const sw = make(() => 'ok');
    await sw.start();
    sw.post({ t: 'hang', ms: 600_000 });
    const died = once(sw, 'death');
    sw.kill('test hang');
    expect(await died).toEqual([{ reason: 'killed: test hang', generation: 1, deaths: 1 }]);
    expect(sw.state).toBe('restarting');
    expect(sw.post({ t: 'echo', v: 0 })).toBe(false); // nobody to post to
    await restartedAs(sw, 2);
    expect(await echo(sw, 3)).toEqual([{ t: 'echo', v: 3, start: 1 }, 2]);

    const crashed = once(sw, 'death');
    sw.post({ t: 'throw' });
    expect((await crashed)[0]).toMatchObject({ reason: expect.stringMatching(/^uncaught error: test worker: uncaught error requested/), generation: 2, deaths: 2 });
    await restartedAs(sw, 3);
    expect([sw.deaths, sw.restarts]).toEqual([2, 2]);
  });

  it('close() stops for good: no restart after it, whether a restart was pending or the worker was up', async () => {
    const sw = make(() => 'ok');
    await sw.start();
    const restarting = once(sw, 'restarting');
    sw.post({ t: 'exit', code: 1 });
    await restarting; // the restart timer (10 ms) is armed
    await sw.close();
    expect([sw.state, sw.worker]).toEqual(['closed', null]);
    await sleep(300);
    expect([sw.generation, sw.restarts, sw.state]).toEqual([1, 0, 'closed']);
    sw.kill('after close'); // a no-op
    expect(sw.deaths).toBe(1);

    const up = make(() => 'ok');
    await up.start();
    const deaths: Death[] = [];
    up.on('death', (d: Death) => deaths.push(d));
    await up.close(); // its exit is not a death
    await sleep(300);
    expect([up.state, up.generation, deaths.length, up.deaths]).toEqual(['closed', 1, 0, 0]);
    expect(up.post({ t: 'echo', v: 0 })).toBe(false);
  });
});
