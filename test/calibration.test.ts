/**
 * Calibration on synthetic boards with a known camera: render, project through
 * a known K and distortion, add noise, calibrate, compare with the truth.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CameraModel } from '../calibration/camera-model.js';
import { applyHomography, distortPixel, projectPoints, undistortPixel } from '../calibration/camera-model.js';
import { renderBoard, variedPoses, trueCorners, type BoardSpec } from '../calibration/synthetic-board.js';
import { calibrateLens, detectBoard, type LensCalibration } from '../calibration/lens-calibration.js';
import { buildUndistortLut, remapF32 } from '../calibration/undistort-map.js';
import { areaPxToMm2, planeFromBoard, planeFromPoints, regionToMm } from '../calibration/plane.js';
import { computeChecks, DriftMonitor } from '../calibration/image-checks.js';
import { CalibrationStore } from '../calibration/calibration-file.js';
import { binArea4 } from '../inspector/inference/area-binning.js';
import type { GrayImage } from '../inspector/core/gray-image.js';

const W = 1280;
const H = 1024;
const truth: CameraModel = { fx: 1500, fy: 1490, cx: 652, cy: 505, dist: [-0.12, 0.08, 0.001, -0.0015, -0.02] };
const board: BoardSpec = { cols: 9, rows: 6, squareMm: 5 };

/** Largest pixel displacement between two distortion models over the image (a fair "distortion close"). */
function maxDistortionGap(a: CameraModel, b: CameraModel): number {
  let worst = 0;
  for (let v = 40; v < H - 40; v += 40) for (let u = 40; u < W - 40; u += 40) {
    const p = distortPixel(a, u, v);
    const q = distortPixel({ ...b, fx: a.fx, fy: a.fy, cx: a.cx, cy: a.cy }, u, v);
    worst = Math.max(worst, Math.hypot(p.x - q.x, p.y - q.y));
  }
  return worst;
}

const codeOf = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (err) { return (err as { code?: string }).code; }
  return undefined;
};

describe('lens calibration from synthetic boards', () => {
  let views: Array<{ name: string; image: GrayImage }>;
  let result: LensCalibration;
  beforeAll(() => {
    const poses = variedPoses(truth, board, { width: W, height: H }, 12, 11);
    expect(poses).toHaveLength(12);
    views = poses.map((p, i) => ({ name: `view-${i}.png`, image: renderBoard(truth, board, p, { width: W, height: H, noise: 2, seed: i + 1 }) }));
    result = calibrateLens(views, board);
  }, 120_000);

  it('recovers the camera matrix within 1 % and the distortion within half a pixel, RMS < 0.5 px', () => {
    const c = result.camera;
    expect(result.used).toBe(12);
    expect(Math.abs(c.fx / truth.fx - 1)).toBeLessThan(0.01);
    expect(Math.abs(c.fy / truth.fy - 1)).toBeLessThan(0.01);
    expect(Math.abs(c.cx - truth.cx) / W).toBeLessThan(0.01);
    expect(Math.abs(c.cy - truth.cy) / H).toBeLessThan(0.01);
    expect(Math.abs(c.dist[0] - truth.dist[0])).toBeLessThan(0.02);
    expect(maxDistortionGap(truth, c)).toBeLessThan(0.5);
    expect(result.rms).toBeLessThan(0.5);
    for (const v of result.views) expect(v.rms!).toBeLessThan(0.5);
  });

  it('finds corners within a fraction of a pixel of where the known camera put them', () => {
    const poses = variedPoses(truth, board, { width: W, height: H }, 1, 99);
    const img = renderBoard(truth, board, poses[0]!, { width: W, height: H, noise: 2, seed: 5 });
    const found = detectBoard(img, board)!;
    const tc = trueCorners(truth, board, poses[0]!);
    const worst = Math.max(...found.map((p, i) => Math.hypot(p.x - tc[i]!.x, p.y - tc[i]!.y)));
    expect(worst).toBeLessThan(0.5);
  }, 30_000);

  it('refuses too few images, too few boards, no board and too-similar views, each with its code', () => {
    expect(codeOf(() => calibrateLens(views.slice(0, 4), board))).toBe('INSPECTOR_CALIBRATION_TOO_FEW_IMAGES');
    const blank = (i: number): { name: string; image: GrayImage } => ({ name: `blank-${i}`, image: { width: W, height: H, data: new Uint8Array(W * H).fill(120) } });
    const mostlyBlank = [...views.slice(0, 3), ...Array.from({ length: 8 }, (_, i) => blank(i))];
    expect(codeOf(() => calibrateLens(mostlyBlank, board))).toBe('INSPECTOR_CALIBRATION_TOO_FEW_IMAGES');
    expect(codeOf(() => calibrateLens(Array.from({ length: 10 }, (_, i) => blank(i)), board))).toBe('INSPECTOR_CALIBRATION_NO_BOARD');
    // the same view ten times (different noise): nothing to solve focal length and distortion from
    const same = Array.from({ length: 10 }, (_, i) => ({ name: `same-${i}`, image: renderBoard(truth, board,
      variedPoses(truth, board, { width: W, height: H }, 1, 3)[0]!, { width: W, height: H, noise: 2, seed: 100 + i }) }));
    expect(codeOf(() => calibrateLens(same, board))).toBe('INSPECTOR_CALIBRATION_TOO_SIMILAR');
  }, 120_000);
});

describe('undistortion folded into the 4x binning', () => {
  it('maps the distorted board back to straight rows of corners (within a pixel at 320x256)', () => {
    // a large, square-on board: its rows of corners are straight lines in the ideal image
    // a wider-angle lens than `truth` (k1 = -0.3), so rows bend visibly even after binning by 4
    const wide: CameraModel = { ...truth, dist: [-0.3, 0.1, 0.001, -0.0015, 0] };
    const big: BoardSpec = { cols: 11, rows: 8, squareMm: 10 };
    const pose = { rvec: [0, 0, 0.02] as [number, number, number], tvec: [-50, -35, 175] as [number, number, number] };
    const img = renderBoard(wide, big, pose, { width: W, height: H, noise: 1, seed: 2 });
    const binned = new Float32Array((W / 4) * (H / 4));
    binArea4(img.data, { width: W, height: H, factorX: 4, factorY: 4, mul: 1, add: 0 }, binned, new Uint32Array(W / 4));
    const lut = buildUndistortLut(wide, { width: W, height: H }, 4);
    const fixed = new Float32Array(binned.length);
    remapF32(binned, lut, fixed);
    const toGray = (f: Float32Array): GrayImage => ({ width: W / 4, height: H / 4, data: Uint8Array.from(f, (v) => Math.round(v)) });
    const rowBend = (g: GrayImage): number => {
      const c = detectBoard(g, big)!;
      expect(c).not.toBeNull();
      let worst = 0;
      for (let r = 0; r < big.rows; r++) {
        const row = c.slice(r * big.cols, (r + 1) * big.cols);
        const a = row[0]!; const b = row[row.length - 1]!;
        const len = Math.hypot(b.x - a.x, b.y - a.y);
        for (const p of row) worst = Math.max(worst, Math.abs((b.x - a.x) * (a.y - p.y) - (a.x - p.x) * (b.y - a.y)) / len);
      }
      return worst;
    };
    const before = rowBend(toGray(binned));
    const after = rowBend(toGray(fixed));
    expect(before).toBeGreaterThan(1.2); // the test can fail: distortion bends rows visibly
    expect(after).toBeLessThan(0.5);
    // and the corners sit where the distortion-free camera puts them
    const ideal = projectPoints({ ...wide, dist: [0, 0, 0, 0, 0] }, pose.rvec, pose.tvec,
      Array.from({ length: big.rows * big.cols }, (_, i) => ({ x: (i % big.cols) * big.squareMm, y: Math.floor(i / big.cols) * big.squareMm, z: 0 })));
    const c = detectBoard(toGray(fixed), big)!;
    const worst = Math.max(...c.map((p, i) => Math.hypot(p.x - ((ideal[i]!.x + 0.5) / 4 - 0.5), p.y - ((ideal[i]!.y + 0.5) / 4 - 0.5))));
    expect(worst).toBeLessThan(1);
  }, 60_000);
});

describe('plane and scale', () => {
  it('four marked points give the known mm per pixel and map other points right', () => {
    // plane square-on at 300 mm: 300/1500 = 0.2 mm per px along x
    const cam: CameraModel = { fx: 1500, fy: 1500, cx: 640, cy: 512, dist: [0, 0, 0, 0, 0] };
    const pose = { rvec: [0, 0, 0.1] as [number, number, number], tvec: [-40, -30, 300] as [number, number, number] };
    const mm = [{ x: 0, y: 0 }, { x: 80, y: 0 }, { x: 80, y: 60 }, { x: 0, y: 60 }];
    const px = projectPoints(cam, pose.rvec, pose.tvec, mm.map((p) => ({ ...p, z: 0 })));
    const plane = planeFromPoints(px, mm, { width: W, height: H });
    expect(plane.mmPerPx).toBeCloseTo(0.2, 4);
    expect(plane.residualMm).toBeLessThan(1e-4);
    expect(areaPxToMm2(plane, 100)).toBeCloseTo(4, 3);
    const r = regionToMm(plane, { x: 600, y: 500, w: 10, h: 20, areaPx: 150 });
    expect(r.areaMm2).toBeCloseTo(150 * 0.04, 3);
    expect(r.widthMm).toBeCloseTo(2, 3);
  });

  it('a board on a tilted plane seen through the distorting lens gives the plane back in mm', () => {
    const pose = { rvec: [0.25, -0.15, 0.05] as [number, number, number], tvec: [-25, -15, 170] as [number, number, number] };
    const img = renderBoard(truth, board, pose, { width: W, height: H, noise: 1, seed: 9 });
    const plane = planeFromBoard(img, board, truth);
    expect(plane.undistorted).toBe(true);
    expect(plane.residualMm).toBeLessThan(0.02);
    // the board's far corner, seen at the distorted pixel, maps to its mm position
    const far = projectPoints(truth, pose.rvec, pose.tvec, [{ x: 40, y: 25, z: 0 }])[0]!;
    const mmFar = applyHomography(plane.homography, undistortPixel(truth, far.x, far.y).x, undistortPixel(truth, far.x, far.y).y);
    expect(Math.hypot(mmFar.x - 40, mmFar.y - 25)).toBeLessThan(0.05);
    const withoutLens = planeFromBoard(img, board, null);
    expect(withoutLens.residualMm).toBeGreaterThan(plane.residualMm);
  }, 30_000);
});

describe('focus and exposure checks', () => {
  const pose = { rvec: [0.1, 0.1, 0] as [number, number, number], tvec: [-25, -15, 200] as [number, number, number] };
  it('sharpness drops when the image is blurred; saturation fires on a saturated image', () => {
    const sharp = renderBoard(truth, board, pose, { width: W, height: H, noise: 1, seed: 1 });
    const blurred = renderBoard(truth, board, pose, { width: W, height: H, noise: 1, seed: 1, blur: 6 });
    const a = computeChecks(sharp.data, W, H);
    const b = computeChecks(blurred.data, W, H);
    expect(b.tenengrad).toBeLessThan(0.6 * a.tenengrad);
    expect(b.laplacianVar).toBeLessThan(a.laplacianVar);
    expect(a.saturatedFraction).toBe(0);
    const bright = { ...sharp, data: Uint8Array.from(sharp.data, (v) => Math.min(255, v * 2)) };
    const c = computeChecks(bright.data, W, H);
    expect(c.saturatedFraction).toBeGreaterThan(0.05);

    const ref = { tenengrad: a.tenengrad, mean: a.mean, saturatedFraction: a.saturatedFraction };
    const mon = new DriftMonitor(ref);
    for (let i = 0; i < 5; i++) expect(mon.add(a)?.focus.ok ?? true).toBe(true);
    let v = null;
    for (let i = 0; i < 5; i++) v = mon.add(b);
    expect(v!.focus.ok).toBe(false);
    expect(v!.exposure.ok).toBe(true);
    for (let i = 0; i < 5; i++) v = mon.add(c);
    expect(v!.exposure.ok).toBe(false);
    expect(v!.exposure.detail).toMatch(/saturated/);
  }, 30_000);
});

describe('calibration file', () => {
  it('keeps every save as a numbered version, moves the pointer, and rolls back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calib-'));
    try {
      const store = new CalibrationStore(dir, 'line-3');
      expect(store.current()).toBeNull();
      const a = store.save({ roi: { x: 10, y: 20, width: 300, height: 200 } }, { actor: 'alice', note: 'first ROI' });
      expect(a.version).toBe(1);
      const b = store.save({ checks: { reference: { tenengrad: 1, laplacianVar: 1, mean: 100, saturatedFraction: 0, darkFraction: 0 },
        bands: { sharpnessDropMax: 0.3, meanDeltaMax: 20, saturatedMax: 0.02 } } }, { actor: 'bob' });
      expect(b.version).toBe(2);
      expect(b.roi).toEqual(a.roi); // carried over
      const c = store.save({ roi: null }, { actor: 'bob' });
      expect(c.roi).toBeUndefined();
      expect(store.current()!.version).toBe(3);
      expect(readdirSync(dir).filter((f) => f.startsWith('v')).sort()).toEqual(['v000001.json', 'v000002.json', 'v000003.json']);
      store.activate(1);
      expect(store.current()!.roi).toEqual({ x: 10, y: 20, width: 300, height: 200 });
      expect(JSON.parse(readFileSync(join(dir, 'current.json'), 'utf8'))).toEqual({ version: 1 });
      expect(store.list().map((v) => [v.version, v.current, v.sections])).toEqual([[1, true, ['roi']], [2, false, ['roi', 'checks']], [3, false, ['checks']]]);
      const bad = (() => { try { store.save({ roi: { x: -1, y: 0, width: 5, height: 5 } }, { actor: 'x' }); } catch (e) { return (e as { code: string }).code; } return null; })();
      expect(bad).toBe('INSPECTOR_CALIBRATION_FILE_INVALID');
      expect(store.versions()).toHaveLength(3); // a refused save leaves nothing behind
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
