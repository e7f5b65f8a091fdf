/**
 * Registration (calibration/registration.ts) on real fixture parts: parts
 * shifted and rotated by known amounts are recovered; blank frames, noise and
 * a part turned by 90° (a wrong orientation / wrong part) are refused with a
 * reason instead of throwing.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { readGray, type GrayImage } from '../inspector/core/gray-image.js';
import { cv } from '../inspector/core/opencv.js';
import { createRegistrar, type Registrar } from '../calibration/registration.js';

const W = 320;
const H = 256;

function toModelRes(img: GrayImage): GrayImage {
  const m = new cv.Mat(Buffer.from(img.data), img.height, img.width, cv.CV_8UC1).resize(H, W, 0, 0, cv.INTER_AREA);
  return { width: W, height: H, data: new Uint8Array(m.getData()) };
}

/** The image's part rotated by `deg` about the centre (getRotationMatrix2D sign), then shifted. */
function transform(img: GrayImage, dx: number, dy: number, deg: number): GrayImage {
  const m = new cv.Mat(Buffer.from(img.data), img.height, img.width, cv.CV_8UC1);
  const r = cv.getRotationMatrix2D(new cv.Point2((img.width - 1) / 2, (img.height - 1) / 2), deg, 1).getDataAsArray();
  const a = new cv.Mat([[r[0]![0]!, r[0]![1]!, r[0]![2]! + dx], [r[1]![0]!, r[1]![1]!, r[1]![2]! + dy]], cv.CV_64F);
  const out = m.warpAffine(a, new cv.Size(img.width, img.height), cv.INTER_LINEAR, cv.BORDER_REPLICATE);
  return { width: img.width, height: img.height, data: new Uint8Array(out.getData()) };
}

describe('registration to a golden reference', () => {
  let reference: GrayImage;
  let fullRef: GrayImage;
  let reg: Registrar;

  beforeAll(async () => {
    fullRef = await readGray('test-images/train/parts/00000.png');
    reference = toModelRes(fullRef);
    reg = createRegistrar(reference, { maxShiftPx: 24, maxRotationDeg: 4, minQuality: 0.6 });
  });

  it.each([
    [0, 0, 0], [20, 0, 0], [0, -20, 0], [-20, 20, 0], [7.5, -3.25, 0],
    [0, 0, 3], [0, 0, -3], [12, -9, 2.2], [-20, 15, -3], [18, 18, 3],
  ])('recovers a shift of (%f, %f) px and a rotation of %f°', (dx, dy, deg) => {
    const r = reg.register(transform(reference, dx, dy, deg));
    expect(r.ok, r.reason).toBe(true);
    expect(r.dx).toBeCloseTo(dx, 0);
    expect(Math.abs(r.dx - dx)).toBeLessThan(0.3);
    expect(Math.abs(r.dy - dy)).toBeLessThan(0.3);
    expect(Math.abs(r.angleDeg - deg)).toBeLessThan(0.1);
    expect(r.quality).toBeGreaterThan(0.95);
  });

  it('recovers a full-resolution frame transform at the model resolution (frame px / 4)', () => {
    const moved = toModelRes(transform(fullRef, 60, -44, -2.5));
    const r = reg.register(moved);
    expect(r.ok, r.reason).toBe(true);
    expect(Math.abs(r.dx - 15)).toBeLessThan(0.4);
    expect(Math.abs(r.dy + 11)).toBeLessThan(0.4);
    expect(Math.abs(r.angleDeg + 2.5)).toBeLessThan(0.15);
  });

  it('warp() brings the moved part back onto the reference', () => {
    const moved = transform(reference, -13, 8, 1.7);
    const r = reg.register(moved);
    const out = new Uint8Array(W * H);
    reg.warp(moved, r, out);
    const again = new Uint8Array(W * H);
    reg.warp(moved, { ...r }, again); // not the cached one: warps afresh
    let diff = 0;
    let n = 0;
    let same = 0;
    for (let y = 30; y < H - 30; y++) {
      for (let x = 30; x < W - 30; x++) {
        const i = y * W + x;
        diff += Math.abs(out[i]! - reference.data[i]!);
        same += Math.abs(out[i]! - again[i]!);
        n++;
      }
    }
    expect(diff / n).toBeLessThan(2.5); // grey levels: interpolation only
    expect(same).toBe(0);
    // unregistered, the same comparison is far off
    let raw = 0;
    for (let y = 30; y < H - 30; y++) for (let x = 30; x < W - 30; x++) raw += Math.abs(moved.data[y * W + x]! - reference.data[y * W + x]!);
    expect(raw / n).toBeGreaterThan(10 * (diff / n));
  });

  it('registers other good parts of the train split with high quality', async () => {
    for (const f of ['00002.png', '00004.png', '00006.png']) {
      const r = reg.register(toModelRes(await readGray(`test-images/train/parts/${f}`)));
      expect(r.ok, `${f}: ${r.reason}`).toBe(true);
      expect(r.quality).toBeGreaterThan(0.9);
    }
  });

  it('refuses a blank frame with a reason', () => {
    const r = reg.register({ width: W, height: H, data: new Uint8Array(W * H).fill(40) });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/blank/);
    expect(r.quality).toBe(0);
  });

  it('refuses pure noise (no part)', () => {
    const data = new Uint8Array(W * H);
    let s = 12345;
    for (let i = 0; i < data.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; data[i] = s >>> 24; }
    const r = reg.register({ width: W, height: H, data });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/quality/);
  });

  it('refuses a part turned by 90° (wrong orientation) and a shift beyond the limit', () => {
    const turned = reg.register(transform(reference, 0, 0, 90));
    expect(turned.ok).toBe(false);
    const far = reg.register(transform(reference, 40, 0, 0));
    expect(far.ok).toBe(false);
    expect(far.reason).toMatch(/shift|quality/);
  });

  it('refuses an image of the wrong size without throwing', () => {
    const r = reg.register({ width: 10, height: 10, data: new Uint8Array(100) });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/10x10/);
  });
});
