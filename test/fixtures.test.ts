import { describe, it, expect } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng, deriveSeed } from '../scripts/fixtures/prng.js';
import { renderPart } from '../scripts/fixtures/render-part.js';
import { DEFECT_CLASSES } from '../scripts/fixtures/defects.js';
import { FRAME_WIDTH, FRAME_HEIGHT } from '../scripts/fixtures/geometry.js';
import { generateDataset, planSplit, renderSplitImage, type GroundTruth } from '../scripts/fixtures/dataset.js';

/** Extent of non-zero pixels, computed independently of the generator's own helper. */
function extent(mask: Uint8Array, w: number): [number, number, number, number] | null {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  mask.forEach((v, i) => {
    if (!v) return;
    const x = i % w, y = Math.floor(i / w);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x + 1);
    y0 = Math.min(y0, y); y1 = Math.max(y1, y + 1);
  });
  return Number.isFinite(x0) ? [x0, y0, x1, y1] : null;
}

function countDiffering(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('synthetic part renderer', () => {
  it('is deterministic: same seed, same pixels; different seed, different pixels', () => {
    const a = renderPart(new Rng(42), { defect: 'scratch' });
    const b = renderPart(new Rng(42), { defect: 'scratch' });
    const c = renderPart(new Rng(43), { defect: 'scratch' });
    expect(a.width).toBe(FRAME_WIDTH);
    expect(a.height).toBe(FRAME_HEIGHT);
    expect(a.pixels.length).toBe(FRAME_WIDTH * FRAME_HEIGHT);
    expect(countDiffering(a.pixels, b.pixels)).toBe(0);
    expect(Buffer.from(a.mask!).equals(Buffer.from(b.mask!))).toBe(true);
    expect(a.bbox).toEqual(b.bbox);
    // a different seed moves the part, the noise and the defect: most pixels change
    expect(countDiffering(a.pixels, c.pixels)).toBeGreaterThan(a.pixels.length / 2);
    expect(a.bbox).not.toEqual(c.bbox);
  });

  it('renders a plausible scene: dark belt, bright part, dark holes', () => {
    const p = renderPart(new Rng(7));
    expect(p.label).toBe('good');
    expect(p.mask).toBeNull();
    expect(p.bbox).toBeNull();
    const at = (x: number, y: number) => p.pixels[y * p.width + x]!;
    expect(at(20, 20)).toBeLessThan(60); // belt corner
    expect(at(640, 380)).toBeGreaterThan(150); // part surface above the slot
    const [hx, hy] = [p.geometry.cx + p.geometry.holes[0]!.lx, p.geometry.cy + p.geometry.holes[0]!.ly];
    expect(at(Math.round(hx), Math.round(hy))).toBeLessThan(60); // inside a bore (rotation is small)
  });

  for (const cls of DEFECT_CLASSES) {
    it(`${cls}: non-empty mask, exact bbox, and the masked pixels really changed`, () => {
      const rng = new Rng(deriveSeed(1234, DEFECT_CLASSES.indexOf(cls)));
      const good = renderPart(rng.clone(), { defect: null });
      const bad = renderPart(rng.clone(), { defect: cls });
      expect(bad.label).toBe('defect');
      expect(bad.defect).toBe(cls);
      const mask = bad.mask!;
      expect(mask).toBeInstanceOf(Uint8Array);
      expect(mask.length).toBe(bad.pixels.length);
      expect(mask.every((v) => v === 0 || v === 255)).toBe(true);
      const area = mask.reduce((n, v) => n + (v ? 1 : 0), 0);
      expect(area).toBeGreaterThan(20);
      expect(bad.bbox).toEqual(extent(mask, bad.width));

      // same scene: outside the mask nothing changed, inside it clearly did
      let inside = 0, strong = 0, sumAbs = 0;
      for (let i = 0; i < mask.length; i++) {
        const d = Math.abs(bad.pixels[i]! - good.pixels[i]!);
        if (mask[i]) {
          inside++; sumAbs += d;
          if (d >= 20) strong++;
        } else if (d !== 0) {
          throw new Error(`pixel ${i} outside the ${cls} mask changed by ${d}`);
        }
      }
      expect(sumAbs / inside).toBeGreaterThanOrEqual(40);
      expect(strong / inside).toBeGreaterThan(0.9);

      // visible after the model's 4x4 box downscale: some 4x4 cell moves by >= 10 grey levels
      let best = 0;
      for (let cy = 0; cy < bad.height; cy += 4) {
        for (let cx = 0; cx < bad.width; cx += 4) {
          let s = 0;
          for (let y = cy; y < cy + 4; y++) for (let x = cx; x < cx + 4; x++) {
            const i = y * bad.width + x;
            s += bad.pixels[i]! - good.pixels[i]!;
          }
          best = Math.max(best, Math.abs(s / 16));
        }
      }
      expect(best).toBeGreaterThanOrEqual(10);
    });
  }

  it('plans balanced, shuffled splits', () => {
    const plan = planSplit(99, 240, 0.4);
    expect(plan.length).toBe(240);
    const counts = Object.fromEntries(DEFECT_CLASSES.map((c) => [c, plan.filter((p) => p === c).length]));
    expect(counts).toEqual({ scratch: 24, spot: 24, crack: 24, missing_feature: 24 });
    expect(plan.filter((p) => p === null).length).toBe(144);
    // shuffled: defects are not all at the start
    expect(plan.slice(0, 96).filter((p) => p !== null).length).toBeLessThan(80);
  });
});

describe('generated fixture set', () => {
  it('writes parts, masks and a ground truth that lists files that exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fixtures-'));
    try {
      await generateDataset({ out: dir, seed: 3, train: 4, test: 4 });
      for (const split of ['train', 'test'] as const) {
        const gt = JSON.parse(await readFile(join(dir, split, 'ground-truth.json'), 'utf8')) as GroundTruth;
        expect(gt.version).toBe(1);
        expect(gt.seed).toBe(3);
        expect([gt.width, gt.height]).toEqual([1280, 1024]);
        expect(gt.images.length).toBe(4);
        expect(gt.images.filter((im) => im.label === 'defect').length).toBe(2); // round(4*.5), round(4*.4)
        for (const [i, im] of gt.images.entries()) {
          expect(im.file).toBe(`parts/${String(i).padStart(5, '0')}.png`);
          const png = await readFile(join(dir, split, im.file));
          const meta = await sharp(png).metadata();
          expect([meta.width, meta.height, meta.channels, meta.format]).toEqual([1280, 1024, 1, 'png']);
          expect([png[24], png[25]]).toEqual([8, 0]); // IHDR: bit depth 8, colour type 0 (greyscale)
          // the file decodes to exactly what the renderer produces in memory
          // (sharp's raw output is sRGB unless asked otherwise: keep it one channel)
          const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
          expect(info.channels).toBe(1);
          const again = renderSplitImage(gt.splitSeed, i, im.defect);
          expect(countDiffering(new Uint8Array(data), again.pixels)).toBe(0);
          if (im.label === 'good') {
            expect(im.defect).toBeNull();
            expect(im.mask).toBeNull();
            expect(im.bbox).toBeNull();
            continue;
          }
          expect(DEFECT_CLASSES).toContain(im.defect);
          expect(im.mask).toBe(`masks/${String(i).padStart(5, '0')}.png`);
          expect((await stat(join(dir, split, im.mask!))).isFile()).toBe(true);
          const m = await sharp(join(dir, split, im.mask!)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
          expect(m.info.channels).toBe(1);
          expect(new Uint8Array(m.data).every((v) => v === 0 || v === 255)).toBe(true);
          expect(im.bbox).toEqual(extent(new Uint8Array(m.data), m.info.width));
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
