/**
 * Teach options chosen from the good images (inspector/teach/auto-options.ts):
 * a binarised board gets the envelope, local alignment, opening and full
 * resolution, and the package taught from it alone passes the board shifted
 * by 2 px while it rejects a copper blob (what the hand-written options of
 * teach-binary.test.ts do; without options the shifted board is rejected
 * there); grey fixture parts get exactly the fixed defaults (the same model
 * bytes); a repetitive pattern turns registration off; given options win and
 * are marked so in the manifest's training.teach.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGray, type GrayImage } from '../inspector/core/gray-image.js';
import { chooseTeachOptions, profileImages, registrationSelfTest } from '../inspector/teach/auto-options.js';
import { teachPackage } from '../inspector/teach/teach-package.js';
import { createJudge } from '../inspector/teach/judge.js';
import { describeTeachOptions, parseTeachOptionsArg } from '../inspector/cli/teach-command.js';

const SIZE = 128;

/** A board: dark substrate, bright traces and pads (irregular), offset by (dx, dy); optionally a copper blob. */
function board(dx: number, dy: number, blob?: { x: number; y: number; s: number }): GrayImage {
  const data = new Uint8Array(SIZE * SIZE).fill(30);
  const fill = (x0: number, y0: number, w: number, h: number): void => {
    for (let y = Math.max(0, y0 + dy); y < Math.min(SIZE, y0 + dy + h); y++) {
      for (let x = Math.max(0, x0 + dx); x < Math.min(SIZE, x0 + dx + w); x++) data[y * SIZE + x] = 220;
    }
  };
  for (let i = 0; i < 5; i++) fill(10 + i * 3, 12 + i * 22, 90 - i * 7, 6);
  fill(60, 8, 8, 110);
  fill(20, 100, 14, 14); fill(90, 30, 14, 14); fill(100, 80, 10, 20);
  if (blob) for (let y = blob.y; y < blob.y + blob.s; y++) for (let x = blob.x; x < blob.x + blob.s; x++) data[y * SIZE + x] = 220;
  return { width: SIZE, height: SIZE, data };
}

/** A grid of 2x2 dots every 5 px: the same picture every 5 px. */
function grid(): GrayImage {
  const data = new Uint8Array(SIZE * SIZE).fill(20);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) if (x % 5 < 2 && y % 5 < 2) data[y * SIZE + x] = 230;
  return { width: SIZE, height: SIZE, data };
}

describe('teach options chosen from the good images', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'teach-auto-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('profiles a thresholded board as binarised and a noisy grey part as grey', async () => {
    const b = profileImages([board(0, 0)]);
    expect(b).toMatchObject({ kind: 'binarised', dark: 30, bright: 220, contrast: 190, noiseSigma: 0 });
    expect(b.twoLevelShare).toBe(1);
    const part = await readGray('test-images/train/parts/00000.png');
    const g = profileImages([part]);
    expect(g.kind).toBe('grey');
    expect(g.noiseSigma).toBeGreaterThan(1);      // sensor noise: not a thresholded image
  });

  it('binarised: envelope, local alignment, opening, full resolution, levels from the contrast; registration self-tested', () => {
    const c = chooseTeachOptions([board(0, 0)], {});
    expect(c.options).toMatchObject({
      downscale: 1, registration: true, smoothPx: 1, halfLevel: Math.round(0.12 * 190), localShiftPx: 2, localShiftBlockPx: 32, openSizePx: 3,
    });
    expect(c.options.variation).toMatchObject({ singleRangePx: 1, singleEdgeGain: 0, singleFloor: Math.round(0.16 * 190), borderPx: 3 });
    expect(c.how.downscale).toMatch(/^auto: binarised/);
    expect(c.how.registration).toMatch(/^auto: on: the registrar finds shifts/);
    expect(c.how['variation.k']).toMatch(/^default/);
  });

  it('a repetitive pattern: the registrar locks onto another repeat, so registration is off', () => {
    const t = registrationSelfTest(grid(), 13);
    expect(t.ok).toBe(false);
    expect(t.detail).toMatch(/repeat/);
    const c = chooseTeachOptions([grid()], {});
    expect(c.options.registration).toBe(false);
    expect(c.how.registration).toMatch(/^auto: off:/);
    expect(registrationSelfTest(board(0, 0), 13).ok).toBe(true);
  });

  it('given options win and are marked given; a blank image keeps registration (teaching then refuses it)', () => {
    const c = chooseTeachOptions([board(0, 0)], { halfLevel: 20, registration: false, variation: { singleFloor: 12 } });
    expect(c.options).toMatchObject({ halfLevel: 20, registration: false, localShiftPx: 2 });
    expect(c.options.variation.singleFloor).toBe(12);
    expect(c.how).toMatchObject({ halfLevel: 'given', registration: 'given', 'variation.singleFloor': 'given' });
    const blank = chooseTeachOptions([{ width: 64, height: 64, data: new Uint8Array(64 * 64).fill(200) }], {});
    expect(blank.options.registration).toBe(true);
    expect(blank.how.registration).toMatch(/blank/);
  });

  it('a package taught with auto from one board passes it shifted by 2 px and rejects a 6x6 copper blob; the manifest says what was chosen', async () => {
    const r = await teachPackage({ good: [board(0, 0)], outDir: join(dir, 'auto'), name: 'auto', version: '1.0.0', trainingData: 'board', auto: true });
    const judge = await createJudge(r.packageDir);
    try {
      const shifted = await judge.judge(board(2, 1));
      const blob = await judge.judge(board(2, 1, { x: 40, y: 25, s: 6 }));
      expect(shifted.score).toBeLessThan(judge.manifest.decision.threshold);
      expect(blob.score).toBeGreaterThanOrEqual(judge.manifest.decision.threshold);
    } finally {
      await judge.close();
    }
    const m = JSON.parse(await readFile(join(r.packageDir, 'manifest.json'), 'utf8')) as { training: Record<string, unknown> };
    const teach = m.training.teach as { auto: boolean; options: Record<string, unknown>; how: Record<string, string>; profile: { kind: string } };
    expect(teach.auto).toBe(true);
    expect(teach.profile.kind).toBe('binarised');
    expect(teach.options).toMatchObject({ downscale: 1, localShiftPx: 2, openSizePx: 3, halfLevel: 23 });
    expect(teach.how.openSizePx).toMatch(/^auto: /);
    // what the manifest lists is what --options / --teach-options take back
    expect(parseTeachOptionsArg(JSON.stringify(teach.options))).toEqual(teach.options);
    expect(describeTeachOptions(m.training)).toContain('openSizePx 3  (auto: binarised');
  }, 120_000);

  it('grey fixture parts: auto chooses the fixed defaults, so the model is byte for byte the one taught without auto', async () => {
    const good = await Promise.all(['00000', '00003', '00004'].map((f) => readGray(`test-images/train/parts/${f}.png`)));
    const a = await teachPackage({ good, outDir: join(dir, 'grey-auto'), name: 'g', version: '1.0.0', trainingData: 'x', auto: true });
    const b = await teachPackage({ good, outDir: join(dir, 'grey-fixed'), name: 'g', version: '1.0.0', trainingData: 'x' });
    expect(a.manifest.sha256).toBe(b.manifest.sha256);
    expect(a.manifest.input.shape).toEqual([1, 1, 256, 320]);
    const how = (a.manifest.training as unknown as { teach: { how: Record<string, string> } }).teach.how;
    expect(how.downscale).toMatch(/^auto: the default 4/);
    expect((b.manifest.training as unknown as { teach: { how: Record<string, string> } }).teach.how.downscale).toBe('default');
  }, 120_000);

  it('--options / --teach-options: unknown keys and non-objects are refused', () => {
    expect(() => parseTeachOptionsArg('{"halfLevl": 3}')).toThrow(/unknown option\(s\) halfLevl/);
    expect(() => parseTeachOptionsArg('[1]')).toThrow(/JSON object/);
    expect(() => parseTeachOptionsArg('{')).toThrow(/not JSON/);
    expect(parseTeachOptionsArg('{"registration": false, "variation": {"singleFloor": 30}}')).toEqual({ registration: false, variation: { singleFloor: 30 } });
  });
});
