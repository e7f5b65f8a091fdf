/** Tiny grey images for the evaluation tests (test/eval-*.test.ts), and the default model they score with. */
import sharp from 'sharp';
import type { GrayImage } from '../../inspector/core/gray-image.js';

export const DEFAULT_MODEL = 'models/default/1.0.0';

/** A w x h image of one grey value. */
export function img(w: number, h: number, v = 128): GrayImage {
  return { width: w, height: h, data: new Uint8Array(w * h).fill(v) };
}

/** Write a grey image as PNG, or as JPEG (quality 95) when the path ends in .jpg. */
export async function writeImage(path: string, im: GrayImage): Promise<void> {
  const s = sharp(im.data, { raw: { width: im.width, height: im.height, channels: 1 } });
  await (path.endsWith('.jpg') ? s.jpeg({ quality: 95 }) : s.png()).toFile(path);
}
