/**
 * Lens undistortion on the registration path: a taught (registering) package
 * on a station with a lens calibration. Fixture parts are put through a
 * strong barrel distortion (the "camera"), a package is taught from distorted
 * good frames with the same lens (`teachPackage({ lens })`), and a ModelRunner
 * with that lens (`undistort`) judges distorted test frames: the worker bins
 * them, undistorts the bytes through the table, registers and runs the model.
 * Without the undistortion the same frames are misjudged, which is what makes
 * the first assertion mean something.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGray, type GrayImage } from '../inspector/core/gray-image.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { teachPackage } from '../inspector/teach/teach-package.js';
import { undistortPixel, type CameraModel } from '../calibration/camera-model.js';

const FRAME = { width: 1280, height: 1024 };
const CAMERA: CameraModel = { fx: 1400, fy: 1400, cx: 639.5, cy: 511.5, dist: [-0.25, 0.05, 0, 0, 0] };

/** For each camera (distorted) pixel, where it looks in the ideal image: bilinear source positions. */
function distortionMap(cam: CameraModel): Float32Array {
  const map = new Float32Array(FRAME.width * FRAME.height * 2);
  for (let v = 0, k = 0; v < FRAME.height; v++) {
    for (let u = 0; u < FRAME.width; u++, k += 2) {
      const p = undistortPixel(cam, u, v);
      map[k] = p.x; map[k + 1] = p.y;
    }
  }
  return map;
}

/** What the camera sees: the ideal image resampled through the lens (border replicated). */
function throughLens(img: GrayImage, map: Float32Array): GrayImage {
  const { width: w, height: h } = img;
  const out = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const x = Math.min(w - 1.001, Math.max(0, map[2 * i]!));
    const y = Math.min(h - 1.001, Math.max(0, map[2 * i + 1]!));
    const x0 = x | 0; const y0 = y | 0; const fx = x - x0; const fy = y - y0;
    const j = y0 * w + x0;
    const top = img.data[j]! + (img.data[j + 1]! - img.data[j]!) * fx;
    const bot = img.data[j + w]! + (img.data[j + w + 1]! - img.data[j + w]!) * fx;
    out[i] = Math.round(top + (bot - top) * fy);
  }
  return { width: w, height: h, data: out };
}

describe('registration path with a lens calibration', () => {
  let dir: string;
  let pkg: string;
  let good: GrayImage[];
  let defective: GrayImage[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reg-undistort-'));
    const map = distortionMap(CAMERA);
    const gt = JSON.parse(await readFile('test-images/test/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const pick = async (label: (l: string) => boolean, n: number): Promise<GrayImage[]> => Promise.all(gt.images.filter((i) => label(i.label)).slice(0, n)
      .map(async (i) => throughLens(await readGray(join('test-images/test', i.file)), map)));
    good = await pick((l) => l === 'good', 8);
    defective = await pick((l) => l !== 'good', 8);
    const train = JSON.parse(await readFile('test-images/train/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const teach = await Promise.all(train.images.filter((i) => i.label === 'good').slice(0, 20)
      .map(async (i) => throughLens(await readGray(join('test-images/train', i.file)), map)));
    pkg = (await teachPackage({ good: teach, lens: CAMERA, outDir: join(dir, 'lens', '1.0.0'), name: 'lens', version: '1.0.0', trainingData: '20 good train parts through a barrel lens' })).packageDir;
  }, 180_000);

  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  async function judge(undistort: boolean): Promise<{ good: Array<{ ok: boolean; score: number }>; defective: Array<{ ok: boolean; score: number }> }> {
    const runner = await ModelRunner.create({ packageDir: pkg, frame: FRAME, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1,
      ...(undistort ? { undistort: { camera: CAMERA } } : {}) });
    try {
      const run = async (imgs: GrayImage[]): Promise<Array<{ ok: boolean; score: number }>> => {
        const out = [];
        for (const img of imgs) { const r = await runner.infer(img.data); out.push({ ok: r.registration?.ok ?? false, score: r.score }); }
        return out;
      };
      return { good: await run(good), defective: await run(defective) };
    } finally {
      await runner.close();
    }
  }

  it('undistorts, registers and judges distorted frames right; without the lens table it misjudges them', async () => {
    const withLens = await judge(true);
    for (const r of withLens.good) {
      expect(r.ok).toBe(true);
      expect(r.score).toBeLessThan(0.5);
    }
    const caught = withLens.defective.filter((r) => !r.ok || !(r.score < 0.5)).length;
    expect(caught).toBeGreaterThanOrEqual(7);

    const withoutLens = await judge(false);
    const goodRejected = withoutLens.good.filter((r) => !r.ok || !(r.score < 0.5)).length;
    expect(goodRejected).toBeGreaterThan(0);
  }, 180_000);
});
