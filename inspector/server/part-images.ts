/**
 * Part images for the API: the image writer's relative paths, resolved inside
 * the images folder (anything that would leave it is refused), and the
 * anomaly map rendered as a heatmap with sharp (in the server worker).
 */
import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { ImageMissingError, PathOutsideError } from './errors.js';
import { HEAT_LUT_RGBA } from './heat-lut.js';

/** Resolve `rel` inside `dir`; throws PathOutsideError for `..`, absolute paths or symlinks leading out. */
export async function resolveInside(dir: string, rel: string): Promise<string> {
  const root = await realpath(resolve(dir));
  const full = resolve(root, rel);
  const escapes = (p: string) => { const r = relative(root, p); return r === '' || r.startsWith('..' + sep) || r === '..' || isAbsolute(r); };
  if (isAbsolute(rel) || escapes(full)) throw new PathOutsideError(rel);
  let real: string;
  try { real = await realpath(full); } catch { throw new ImageMissingError(rel); }
  if (escapes(real)) throw new PathOutsideError(rel);
  return real;
}

export async function readPartImage(imagesDir: string | null, rel: string | null, what: string): Promise<Buffer> {
  if (!imagesDir || !rel) throw new ImageMissingError(what);
  const path = await resolveInside(imagesDir, rel);
  try { return await readFile(path); } catch { throw new ImageMissingError(what); }
}


/** Gray 8-bit map PNG → RGBA heatmap PNG (alpha follows the value, for overlay on the part image). */
export async function renderHeatmap(grayPng: Buffer, width?: number): Promise<Buffer> {
  let img = sharp(grayPng).toColourspace('b-w');
  if (width) img = img.resize({ width });
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  const out = Buffer.allocUnsafe(info.width * info.height * 4);
  for (let i = 0, n = info.width * info.height; i < n; i++) out.set(HEAT_LUT_RGBA.subarray(data[i * info.channels]! * 4, data[i * info.channels]! * 4 + 4), i * 4);
  return sharp(out, { raw: { width: info.width, height: info.height, channels: 4 } }).png({ compressionLevel: 3 }).toBuffer();
}
