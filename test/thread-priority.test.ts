/**
 * The hot path's priority (core/thread-priority.ts): a worker sets its nice before its entry loads,
 * so the threads it creates (GStreamer's, ORT's) inherit it; with the hot path raised, hot workers
 * get its value and every other worker the process's base. Raising needs root (or CAP_SYS_NICE):
 * that part runs where the tests run as root (CI does), the rest everywhere.
 */
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTsWorker } from '../inspector/core/spawn-ts-worker.js';
import { lowerHotPath, raiseHotPath, threadNice } from '../inspector/core/thread-priority.js';

const NICE_WORKER = new URL('./helpers/nice-worker.ts', import.meta.url);
const BASE = getPriority(0);

function niceOf(options: { nice?: number }): Promise<{ nice: number; childNice: number }> {
  const w = spawnTsWorker(NICE_WORKER, undefined, options);
  return new Promise((resolve, reject) => {
    w.once('message', (m: { nice: number; childNice: number }) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
}

describe('thread priority of the station\'s workers', () => {
  afterEach(() => { lowerHotPath(); });

  it('a worker takes the nice it is given before its entry loads, and the threads it creates inherit it', async () => {
    const lower = Math.min(BASE + 7, 19); // lowering is always permitted
    expect(await niceOf({ nice: lower })).toEqual({ nice: lower, childNice: lower });
  });

  it('nothing raised: workers inherit, and threadNice places no thread', async () => {
    expect(threadNice('hot')).toBeUndefined();
    expect(threadNice('normal')).toBeUndefined();
    expect(await niceOf({})).toEqual({ nice: BASE, childNice: BASE });
  });

  it.runIf(process.getuid?.() === 0)('raised (as root): the main thread and hot workers at the hot value, other workers back at the base', async () => {
    const hot = Math.max(BASE - 5, -20);
    expect(raiseHotPath(hot)).toEqual({ raised: true, nice: hot });
    expect(getPriority(0)).toBe(hot);
    expect(threadNice('hot')).toBe(hot);
    expect(threadNice('normal')).toBe(BASE);
    expect(await niceOf({ nice: threadNice('hot') })).toEqual({ nice: hot, childNice: hot });
    expect(await niceOf({})).toEqual({ nice: BASE, childNice: BASE }); // the default of every other worker
    lowerHotPath();
    expect(getPriority(0)).toBe(BASE);
    expect(threadNice('hot')).toBeUndefined();
  });
});
