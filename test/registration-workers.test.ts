/**
 * Registration in several inference workers of one process: two taught
 * (registering) packages run in ModelRunners one after the other and then at
 * the same time, as a live model swap and a shadow runner would. Registration
 * is plain JS; while it used the OpenCV binding (not context-aware), the second
 * worker to load it aborted the whole process (V8 fatal error in DLOpen).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGray, type GrayImage } from '../inspector/core/gray-image.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { teachPackage } from '../inspector/teach/teach-package.js';

const FRAME = { width: 1280, height: 1024 };

describe('registering packages in several inference workers of one process', () => {
  let dir: string;
  let pkgA: string;
  let pkgB: string;
  let parts: GrayImage[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reg-workers-'));
    parts = await Promise.all(['00000', '00002', '00004', '00006'].map((f) => readGray(`test-images/train/parts/${f}.png`)));
    // two different packages: one golden part each
    pkgA = (await teachPackage({ good: [parts[0]!], outDir: join(dir, 'a', '1.0.0'), name: 'a', version: '1.0.0', trainingData: 'part 00000' })).packageDir;
    pkgB = (await teachPackage({ good: [parts[1]!], outDir: join(dir, 'b', '1.0.0'), name: 'b', version: '1.0.0', trainingData: 'part 00002' })).packageDir;
  }, 120_000);

  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const create = (packageDir: string): Promise<ModelRunner> => ModelRunner.create({ packageDir, frame: FRAME, providers: ['cpu'],
    intraOpNumThreads: 1, warmupRuns: 1 });

  async function runAll(runner: ModelRunner): Promise<Array<{ ok: boolean; score: number; quality: number }>> {
    const out = [];
    for (const p of parts) {
      const r = await runner.infer(p.data);
      out.push({ ok: r.registration?.ok ?? false, score: r.score, quality: r.registration?.quality ?? 0 });
    }
    return out;
  }

  it('one after the other (a live swap), then both at once (live + shadow), frames through each', async () => {
    const first = await create(pkgA);
    const alone = await runAll(first);
    await first.close();
    // the second registering worker of the process (the first one has ended)
    const second = await create(pkgB);
    const aloneB = await runAll(second);
    // a third one while the second still runs: both at the same time, frames interleaved
    const third = await create(pkgA);
    try {
      const [a, b] = await Promise.all([runAll(third), runAll(second)]);
      for (const r of [...alone, ...aloneB, ...a, ...b]) {
        expect(r.ok).toBe(true);
        expect(r.quality).toBeGreaterThan(0.9);
        expect(Number.isFinite(r.score)).toBe(true);
      }
      // the same package on the same frames gives the same scores in a fresh worker
      expect(a.map((r) => r.score)).toEqual(alone.map((r) => r.score));
      expect(b.map((r) => r.score)).toEqual(aloneB.map((r) => r.score));
      // each runner judges against its own reference: package A's golden part is perfect under A
      expect(a[0]!.score).toBeLessThan(0.5);
      expect(a[0]!.score).toBeLessThan(b[0]!.score + 1e-6);
    } finally {
      await Promise.all([second.close(), third.close()]);
    }
  }, 120_000);
});
