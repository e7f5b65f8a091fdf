/**
 * Teaching options for binarised images (what DeepPCB-style template/tested pairs
 * need): a tested board whose copper sits 2 px off the template passes once the
 * graph's local alignment and the ±1 px min/max envelope are on, while a small
 * blob of copper in a gap is still a defect. Without those options the same
 * shifted board is (wrongly) rejected, so the options are what makes it pass.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrayImage } from '../inspector/core/gray-image.js';
import { teachPackage, type TeachOptions } from '../inspector/teach/teach-package.js';
import { createJudge } from '../inspector/teach/judge.js';

const SIZE = 128;

/** A board: dark substrate, bright traces and pads, offset by (dx, dy). */
function board(dx: number, dy: number, blob?: { x: number; y: number; s: number }): GrayImage {
  const data = new Uint8Array(SIZE * SIZE).fill(30);
  const fill = (x0: number, y0: number, w: number, h: number): void => {
    for (let y = Math.max(0, y0 + dy); y < Math.min(SIZE, y0 + dy + h); y++) {
      for (let x = Math.max(0, x0 + dx); x < Math.min(SIZE, x0 + dx + w); x++) data[y * SIZE + x] = 220;
    }
  };
  for (let i = 0; i < 5; i++) fill(10, 12 + i * 22, 100, 6);  // horizontal traces
  fill(60, 8, 8, 110);                                          // one vertical trace
  fill(20, 100, 14, 14); fill(90, 30, 14, 14);                  // pads
  if (blob) for (let y = blob.y; y < blob.y + blob.s; y++) for (let x = blob.x; x < blob.x + blob.s; x++) data[y * SIZE + x] = 220;
  return { width: SIZE, height: SIZE, data };
}

const binaryOptions: Partial<TeachOptions> = {
  registration: false, downscale: 1, smoothPx: 1, halfLevel: 30,
  variation: { singleRangePx: 1, singleFloor: 40, singleEdgeGain: 0, borderPx: 3 },
  localShiftPx: 2, localShiftBlockPx: 32, openSizePx: 3,
};

describe('teach options for binarised images', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'teach-binary-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  async function scores(options: Partial<TeachOptions>, name: string): Promise<{ shifted: number; blob: number; threshold: number }> {
    const r = await teachPackage({ good: [board(0, 0)], outDir: join(dir, name), name, version: '1.0.0', trainingData: 'synthetic board', ...options });
    const judge = await createJudge(r.packageDir);
    try {
      const shifted = (await judge.judge(board(2, 1))).score;
      const blob = (await judge.judge(board(2, 1, { x: 40, y: 25, s: 6 }))).score; // copper in the gap between two traces
      return { shifted, blob, threshold: judge.manifest.decision.threshold };
    } finally {
      await judge.close();
    }
  }

  it('passes a board shifted by 2 px and rejects a 6x6 copper blob, with local alignment and the envelope', async () => {
    const s = await scores(binaryOptions, 'binary');
    expect(s.shifted).toBeLessThan(s.threshold);
    expect(s.blob).toBeGreaterThanOrEqual(s.threshold);
  }, 120_000);

  it('without those options the same shifted board is rejected', async () => {
    const s = await scores({ registration: false, downscale: 1 }, 'plain');
    expect(s.shifted).toBeGreaterThanOrEqual(s.threshold);
  }, 120_000);
});
