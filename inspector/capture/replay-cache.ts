/**
 * Raw frame cache for the `replay` pipeline.
 *
 * Decoding PNGs at 100 parts/s costs a CPU core, so replay decodes every image
 * of the folder ONCE with sharp to a headerless GRAY8 file of exactly
 * width*height bytes (`00000.gray`, `00001.gray`, …) and GStreamer reads those
 * with `multifilesrc` + `rawvideoparse`, which costs next to nothing.
 *
 * The cache folder holds an `index.json` with the source folder, the frame
 * size and each source's name, mtime and size. When that matches the folder
 * (and every raw file is present with the right size) the cache is reused.
 *
 * Images are taken sorted by name (`*.png`, `*.jpg`, `*.jpeg`, case-insensitive),
 * converted to one grey channel, and resized to width×height with `fit: fill`
 * when their size differs (the aspect ratio is NOT kept: give the replay images
 * the camera's size).
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { CaptureError } from '../core/errors.js';

export interface ReplayCache {
  /** printf pattern for multifilesrc, absolute: `<cacheDir>/%05d.gray` */
  pattern: string;
  /** source image paths (absolute), in frame order: frame i comes from files[i] */
  files: string[];
}

export interface ReplayCacheSize {
  width: number;
  height: number;
}

interface IndexEntry { name: string; mtimeMs: number; size: number }
interface CacheIndex {
  version: 1;
  imagesDir: string;
  width: number;
  height: number;
  sources: IndexEntry[];
}

const INDEX_FILE = 'index.json';
const RAW_RE = /^\d{5}\.gray$/;
const IMAGE_RE = /\.(png|jpe?g)$/i;
/** multifilesrc uses a printf pattern of 5 digits. */
const MAX_IMAGES = 100_000;

export function rawFileName(index: number): string {
  return `${String(index).padStart(5, '0')}.gray`;
}

async function listImages(imagesDir: string): Promise<IndexEntry[]> {
  let names: string[];
  try {
    names = await readdir(imagesDir);
  } catch (err) {
    throw new CaptureError(`replay folder ${imagesDir} cannot be read: ${(err as Error).message}`);
  }
  names = names.filter((n) => IMAGE_RE.test(n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries: IndexEntry[] = [];
  for (const name of names) {
    const st = await stat(path.join(imagesDir, name));
    if (st.isFile()) entries.push({ name, mtimeMs: st.mtimeMs, size: st.size });
  }
  return entries;
}

async function readIndex(cacheDir: string): Promise<CacheIndex | null> {
  try {
    const parsed = JSON.parse(await readFile(path.join(cacheDir, INDEX_FILE), 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as CacheIndex).version === 1) return parsed as CacheIndex;
  } catch { /* missing or corrupt: rebuild */ }
  return null;
}

function sameSources(a: IndexEntry[], b: IndexEntry[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((e, i) => {
    const o = b[i];
    return o !== undefined && o.name === e.name && o.mtimeMs === e.mtimeMs && o.size === e.size;
  });
}

async function rawFilesPresent(cacheDir: string, count: number, frameBytes: number): Promise<boolean> {
  for (let i = 0; i < count; i++) {
    try {
      const st = await stat(path.join(cacheDir, rawFileName(i)));
      if (st.size !== frameBytes) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Decode one image to exactly width*height GRAY8 bytes. */
export async function decodeToGray8(file: string, width: number, height: number): Promise<Buffer> {
  let img = sharp(file, { failOn: 'error' }).removeAlpha();
  const meta = await img.metadata();
  if (meta.width !== width || meta.height !== height) {
    img = img.resize(width, height, { fit: 'fill' });
  }
  const { data, info } = await img.toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || data.length !== width * height) {
    throw new CaptureError(
      `replay image ${file} decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x1`);
  }
  return data;
}

/**
 * Decode the images of `imagesDir` to raw GRAY8 frames in `cacheDir` (reused
 * when up to date). Throws CaptureError when the folder has no images or one
 * cannot be decoded.
 */
export async function prepareReplayCache(
  imagesDir: string,
  cacheDir: string,
  size: ReplayCacheSize,
): Promise<ReplayCache> {
  const { width, height } = size;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new CaptureError(`replay frame size ${width}x${height} is invalid`);
  }
  const srcDir = path.resolve(imagesDir);
  const dir = path.resolve(cacheDir);
  if (dir.includes('%')) throw new CaptureError(`replay cache folder ${dir} must not contain '%'`);

  const sources = await listImages(srcDir);
  if (sources.length === 0) throw new CaptureError(`replay folder ${srcDir} holds no *.png/*.jpg images`);
  if (sources.length > MAX_IMAGES) throw new CaptureError(`replay folder ${srcDir} holds more than ${MAX_IMAGES} images`);

  const files = sources.map((s) => path.join(srcDir, s.name));
  const pattern = path.join(dir, '%05d.gray');
  const frameBytes = width * height;

  await mkdir(dir, { recursive: true });
  const index = await readIndex(dir);
  if (index && index.imagesDir === srcDir && index.width === width && index.height === height
    && sameSources(index.sources, sources) && await rawFilesPresent(dir, sources.length, frameBytes)) {
    return { pattern, files };
  }

  // Rebuild: invalidate the index first so a half-written cache is never reused.
  await unlink(path.join(dir, INDEX_FILE)).catch(() => undefined);
  for (let i = 0; i < files.length; i++) {
    const data = await decodeToGray8(files[i]!, width, height);
    const target = path.join(dir, rawFileName(i));
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, target);
  }
  // Remove raw files left over from a larger folder.
  for (const name of await readdir(dir)) {
    if (RAW_RE.test(name) && Number.parseInt(name, 10) >= files.length) {
      await unlink(path.join(dir, name)).catch(() => undefined);
    }
  }
  const newIndex: CacheIndex = { version: 1, imagesDir: srcDir, width, height, sources };
  const tmpIndex = path.join(dir, `${INDEX_FILE}.${process.pid}.tmp`);
  await writeFile(tmpIndex, JSON.stringify(newIndex, null, 1));
  await rename(tmpIndex, path.join(dir, INDEX_FILE));
  return { pattern, files };
}
