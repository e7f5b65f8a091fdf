/**
 * Geometry of drawn regions (full-resolution image pixels) for the writers:
 * bounding boxes clipped to the image, polygon outlines, areas, and binary
 * masks rasterised with sharp from an SVG (librsvg, `crispEdges`: no
 * anti-aliasing, a pixel is set when its centre lies inside the shape, so an
 * integer box {x,y,w,h} sets exactly w×h pixels).
 */
import sharp from 'sharp';
import type { Region } from './schema.js';

export interface Box { x: number; y: number; w: number; h: number }

/** A region as a closed outline ([x, y] points). */
export function outline(r: Region): Array<[number, number]> {
  if (r.kind === 'polygon') return r.points.map(([x, y]) => [x, y]);
  return [[r.x, r.y], [r.x + r.w, r.y], [r.x + r.w, r.y + r.h], [r.x, r.y + r.h]];
}

/** Bounding box of a region clipped to a W×H image (w or h 0 when it lies outside). */
export function clippedBox(r: Region, width: number, height: number): Box {
  const pts = outline(r);
  const clamp = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
  for (const [x, y] of pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  x0 = clamp(x0, width); x1 = clamp(x1, width); y0 = clamp(y0, height); y1 = clamp(y1, height);
  return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

/** Area in px²: w×h for a box, the shoelace formula for a polygon. */
export function regionArea(r: Region): number {
  if (r.kind === 'box') return r.w * r.h;
  let s = 0;
  const p = r.points;
  for (let i = 0; i < p.length; i++) {
    const [x0, y0] = p[i]!;
    const [x1, y1] = p[(i + 1) % p.length]!;
    s += x0 * y1 - x1 * y0;
  }
  return Math.abs(s) / 2;
}

const num = (v: number): string => (Number.isFinite(v) ? String(v) : '0');

/** The SVG of a mask: black background, the regions filled white. */
export function maskSvg(regions: readonly Region[], width: number, height: number): string {
  const shapes = regions.map((r) => (r.kind === 'box'
    ? `<rect x="${num(r.x)}" y="${num(r.y)}" width="${num(r.w)}" height="${num(r.h)}"/>`
    : `<polygon points="${r.points.map(([x, y]) => `${num(x)},${num(y)}`).join(' ')}"/>`));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" shape-rendering="crispEdges">`
    + `<rect x="0" y="0" width="${width}" height="${height}" fill="#000"/>`
    + `<g fill="#fff" stroke="none" fill-rule="nonzero">${shapes.join('')}</g></svg>`;
}

/** Rasterise regions into a W×H GRAY8 mask (0 / 255). */
export async function rasteriseMask(regions: readonly Region[], width: number, height: number): Promise<Uint8Array> {
  if (regions.length === 0) return new Uint8Array(width * height);
  const { data, info } = await sharp(Buffer.from(maskSvg(regions, width, height)), { limitInputPixels: false })
    .extractChannel(0).threshold(128).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== 1) {
    throw new Error(`mask rasterised at ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x1`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** Encode a GRAY8 mask as a PNG (fixed settings: the same mask gives the same bytes). */
export function encodeMaskPng(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(mask, { raw: { width, height, channels: 1 } }).toColourspace('b-w')
    .png({ compressionLevel: 9, adaptiveFiltering: false, palette: false }).toBuffer();
}
