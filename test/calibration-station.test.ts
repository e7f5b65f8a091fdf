/**
 * The station side of calibration: the inference worker undistorts frames
 * right after binning when given a lens, and drift samples raise/clear alarms.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { logger } from '../inspector/core/logger.js';
import { ModelRunner } from '../inspector/inference/model-runner.js';
import { StationCalibration } from '../calibration/station-calibration.js';
import { CalibrationStore } from '../calibration/calibration-file.js';
import { computeChecks, type ImageChecks } from '../calibration/image-checks.js';

const log = logger.child({ test: 'calibration-station' });
const base = { fx: 1500, fy: 1500, cx: 640, cy: 512 };

describe('undistortion in the inference worker', () => {
  it('an identity lens leaves the model output unchanged; a distorting lens changes it', async () => {
    const frame = await sharp('test-images/test/parts/' + (await import('node:fs')).readdirSync('test-images/test/parts').sort()[0]).toColourspace('b-w').raw().toBuffer();
    const make = (dist: [number, number, number, number, number] | null) => ModelRunner.create({ packageDir: 'models/default/1.0.0',
      frame: { width: 1280, height: 1024 }, providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 1, logger: log,
      ...(dist ? { undistort: { camera: { ...base, dist } } } : {}) });
    const maps: Float32Array[] = [];
    for (const dist of [null, [0, 0, 0, 0, 0], [-0.3, 0.1, 0, 0, 0]] as const) {
      const r = await make(dist ? [...dist] as [number, number, number, number, number] : null);
      try {
        expect(r.startup.preprocess).toBe('js-area-binning');
        await r.infer(frame);
        maps.push(r.copyMap());
      } finally { await r.close(); }
    }
    const gap = (a: Float32Array, b: Float32Array) => { let w = 0; for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i]! - b[i]!)); return w; };
    expect(gap(maps[0]!, maps[1]!)).toBeLessThan(1e-5);
    expect(gap(maps[0]!, maps[2]!)).toBeGreaterThan(1e-3);
  }, 120_000);
});

describe('drift alarms from the calibrated reference', () => {
  it('loads the reference from the calibration file and raises/clears FOCUS_DRIFT and EXPOSURE_DRIFT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'calib-station-'));
    try {
      const W = 256; const H = 256;
      const sharpImg = new Uint8Array(W * H).map((_, i) => (((i % W) >> 3) + ((i / W) >> 3)) & 1 ? 200 : 40);
      const blurImg = new Uint8Array(W * H).fill(120);
      const ref = computeChecks(sharpImg, W, H);
      new CalibrationStore(dir).save({ checks: { reference: { tenengrad: ref.tenengrad, laplacianVar: ref.laplacianVar, mean: ref.mean,
        saturatedFraction: 0, darkFraction: 0 }, bands: { sharpnessDropMax: 0.35, meanDeltaMax: 25, saturatedMax: 0.02 } } }, { actor: 't' });
      const cal = StationCalibration.load({ dir, undistort: true, checkIntervalMs: 1000 }, { width: W, height: H }, log);
      expect(cal.undistort).toBeNull(); // no lens section
      const raised = new Map<string, string>();
      const seen: ImageChecks[] = [];
      const sinks = { setAlarm: (n: string, on: boolean, d: string) => { if (on) raised.set(n, d); else raised.delete(n); }, setChecks: (c: ImageChecks) => seen.push(c) };
      for (let i = 0; i < 5; i++) cal.onChecks(ref, sinks);
      expect([...raised.keys()]).toEqual([]);
      for (let i = 0; i < 5; i++) cal.onChecks(computeChecks(blurImg, W, H), sinks);
      expect(raised.has('FOCUS_DRIFT')).toBe(true);
      const white = computeChecks(new Uint8Array(W * H).fill(255), W, H);
      for (let i = 0; i < 5; i++) cal.onChecks(white, sinks);
      expect(raised.get('EXPOSURE_DRIFT')).toMatch(/saturated/);
      for (let i = 0; i < 5; i++) cal.onChecks(ref, sinks);
      expect([...raised.keys()]).toEqual([]);
      expect(seen).toHaveLength(20);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
