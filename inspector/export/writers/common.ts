/**
 * What every format writer shares: placing a station image into the export
 * (hard link, falling back to a copy across file systems; the bytes are the
 * station's own PNG either way), reading an image's size, and text files
 * written with fixed content only.
 */
import { copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import type { ExportItem } from '../selection.js';

export interface WriterContext {
  /** the (staging) folder the export is written into */
  outDir: string;
  /** class list: COCO category id = index + 1, YOLO class = index */
  classes: readonly string[];
  /** 'link' hard-links station images (copy when that fails); 'copy' always copies */
  images: 'link' | 'copy';
  /** called once per item written */
  onItem: () => void;
}

export interface WriterResult { annotations: number; defectsWithoutRegions: number }
export type FormatWriter = (items: readonly ExportItem[], ctx: WriterContext) => Promise<WriterResult>;

const made = new WeakMap<WriterContext, Set<string>>();

async function ensureDir(ctx: WriterContext, dir: string): Promise<void> {
  let set = made.get(ctx);
  if (!set) { set = new Set(); made.set(ctx, set); }
  if (set.has(dir)) return;
  await mkdir(dir, { recursive: true });
  set.add(dir);
}

/** Put the item's image at `rel` (relative to the export folder). */
export async function placeImage(ctx: WriterContext, item: ExportItem, rel: string): Promise<void> {
  const dest = join(ctx.outDir, rel);
  await ensureDir(ctx, dirname(dest));
  if (ctx.images === 'link') {
    try { await link(item.sourcePath, dest); return; } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
    }
  }
  await copyFile(item.sourcePath, dest);
}

/** Write a generated file (relative path). */
export async function writeOut(ctx: WriterContext, rel: string, data: string | Uint8Array): Promise<void> {
  const dest = join(ctx.outDir, rel);
  await ensureDir(ctx, dirname(dest));
  await writeFile(dest, data);
}

/** Pixel size of a saved image (header only). */
export async function imageSize(path: string): Promise<{ width: number; height: number }> {
  const m = await sharp(path).metadata();
  if (!m.width || !m.height) throw new Error(`cannot read the size of ${path}`);
  return { width: m.width, height: m.height };
}

/** A folder-safe class name. */
export const classDir = (c: string): string => c.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';

/** Deterministic JSON: 2-space indent, trailing newline (keys in insertion order, which the writers fix). */
export const stableJson = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
