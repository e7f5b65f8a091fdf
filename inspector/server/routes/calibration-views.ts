/**
 * Pictures and live figures for the calibration page (used by routes/calibration.ts, server worker only):
 *  - `renderBoardView`: a board image from the lens folder with the corners found drawn on it (SVG overlay
 *    composited by sharp), or the same image undistorted with the lens calibration and the undistorted
 *    corners joined row by row, so straight rows show the fit is right;
 *  - `liveGray`: the newest camera frame at full resolution, copied out of the station's shared buffer;
 *  - `renderRegistrationOverlay`: the golden reference (red) against a frame (cyan) before and after
 *    the registration's warp, the part's box drawn where it was found, the figures in a header
 *    (routes/calibration-reference.ts).
 */
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import type { GrayImage } from '../../core/gray-image.js';
import type { CameraModel } from '../../../calibration/camera-model.js';
import { undistortPixel } from '../../../calibration/camera-model.js';
import { buildUndistortLut, remapU8 } from '../../../calibration/undistort-map.js';
import type { LiveFrameInfo } from '../live-feed.js';
import { ResultsUnavailableError } from '../errors.js';

export interface BoardSpec { cols: number; rows: number; squareMm: number }
type Pt = { x: number; y: number };

/** Corners as circles (the first one larger, orange) and rows as polylines, in image pixels. */
function overlaySvg(width: number, height: number, corners: Pt[] | null, board: BoardSpec, note: string): string {
  const r = Math.max(4, Math.round(Math.min(width, height) / 150));
  const parts: string[] = [];
  if (corners) {
    for (let row = 0; row < board.rows; row++) {
      const pts = corners.slice(row * board.cols, (row + 1) * board.cols).map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="#4fc3f7" stroke-width="${r / 2}"/>`);
    }
    corners.forEach((p, i) => parts.push(`<circle cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="${i === 0 ? r * 2 : r}" fill="none" stroke="${i === 0 ? '#ffb74d' : '#66bb6a'}" stroke-width="${r / 2}"/>`));
  }
  const fs = Math.max(14, Math.round(height / 40));
  parts.push(`<rect x="0" y="0" width="${width}" height="${fs * 1.6}" fill="black" fill-opacity="0.6"/>`);
  parts.push(`<text x="${fs / 2}" y="${fs * 1.15}" font-family="sans-serif" font-size="${fs}" fill="${corners ? '#dfe4ea' : '#ef5350'}">${note.replace(/[<&>]/g, '')}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/**
 * PNG of one board view. `undistort`: remap the image through `camera` (bilinear table, plain JS) and
 * draw the corners at their undistorted positions. `maxWidth` bounds the PNG's size.
 */
export async function renderBoardView(img: GrayImage, corners: Pt[] | null, board: BoardSpec,
  o: { camera: CameraModel | null; undistort: boolean; name: string; maxWidth: number }): Promise<Buffer> {
  let data = img.data;
  let pts = corners;
  let note = corners ? `${o.name}: ${corners.length} corners found` : `${o.name}: board not found`;
  if (o.undistort && o.camera) {
    const lut = buildUndistortLut(o.camera, { width: img.width, height: img.height });
    const out = new Uint8Array(img.width * img.height);
    remapU8(img.data, lut, out);
    data = out;
    pts = corners ? corners.map((p) => undistortPixel(o.camera!, p.x, p.y)) : null;
    note += ' · undistorted';
  }
  const svg = overlaySvg(img.width, img.height, pts, board, note);
  const png = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width: img.width, height: img.height, channels: 1 } })
    .toColourspace('srgb').composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png({ compressionLevel: 3 }).toBuffer();
  return img.width > o.maxWidth ? sharp(png).resize({ width: o.maxWidth }).png({ compressionLevel: 3 }).toBuffer() : png;
}

/** The newest camera frame (full resolution, a private copy) from the running station. */
export async function liveGray(app: FastifyInstance): Promise<GrayImage> {
  if (!app.station.call) throw new ResultsUnavailableError('no station is running');
  const f = await app.station.call<LiveFrameInfo & { data?: Uint8Array }>('liveFrame');
  const pixels = f.data ?? (app.liveFrameBuffer ? new Uint8Array(app.liveFrameBuffer, 0, f.width * f.height) : null);
  if (!pixels) throw new ResultsUnavailableError('no live frame buffer');
  return { width: f.width, height: f.height, data: new Uint8Array(pixels) };
}

export interface OverlayFigures { ok: boolean; dx: number; dy: number; angleDeg: number; quality: number; minQuality: number; reason?: string }

/** The part's bounding box in the reference: pixels far (> 40 grey levels) from the border's median; else a 10 % inset. */
export function partBox(ref: GrayImage): { x0: number; y0: number; x1: number; y1: number } {
  const { width: w, height: h, data } = ref;
  const border: number[] = [];
  for (let x = 0; x < w; x += 2) border.push(data[x]!, data[(h - 1) * w + x]!);
  for (let y = 0; y < h; y += 2) border.push(data[y * w]!, data[y * w + w - 1]!);
  border.sort((a, b) => a - b);
  const bg = border[border.length >> 1]!;
  let x0 = w; let y0 = h; let x1 = -1; let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0, i = y * w; x < w; x++, i++) {
      if (Math.abs(data[i]! - bg) > 40) { if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; }
    }
  }
  const area = (x1 - x0 + 1) * (y1 - y0 + 1);
  if (x1 < 0 || area < 0.01 * w * h || area > 0.95 * w * h) return { x0: w * 0.1, y0: h * 0.1, x1: w * 0.9, y1: h * 0.9 };
  return { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}

/**
 * Where a box of the reference lies in the frame: the registration's convention
 * (calibration/registration.ts): the part is the reference rotated by angleDeg about the centre
 * (getRotationMatrix2D's sign) and then shifted by (dx, dy).
 */
export function registeredBox(width: number, height: number, box: { x0: number; y0: number; x1: number; y1: number },
  f: Pick<OverlayFigures, 'dx' | 'dy' | 'angleDeg'>): Pt[] {
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const a = Math.cos(f.angleDeg * Math.PI / 180);
  const b = Math.sin(f.angleDeg * Math.PI / 180);
  return [[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]].map(([x, y]) => ({
    x: a * (x! - cx) + b * (y! - cy) + cx + f.dx, y: -b * (x! - cx) + a * (y! - cy) + cy + f.dy }));
}

/**
 * The registration overlay PNG: two panels at the reference's size (scaled up to ~480 px wide),
 * each with the golden reference in the red channel and the frame in green + blue (grey where
 * they agree, red/cyan fringes where they do not): left the frame as the camera saw it, with the
 * reference's box drawn where registration found the part; right the frame warped back into the
 * reference (what the model sees). A header bar carries the figures.
 */
export async function renderRegistrationOverlay(reference: GrayImage, frame: Uint8Array, warped: Uint8Array | null, f: OverlayFigures): Promise<Buffer> {
  const { width: w, height: h } = reference;
  const gap = 4;
  const cw = 2 * w + gap;
  const rgb = Buffer.alloc(cw * h * 3, 40);
  const panel = (img: Uint8Array, x0: number): void => {
    for (let y = 0; y < h; y++) {
      for (let x = 0, i = y * w, o = (y * cw + x0) * 3; x < w; x++, i++, o += 3) {
        rgb[o] = reference.data[i]!; rgb[o + 1] = img[i]!; rgb[o + 2] = img[i]!;
      }
    }
  };
  panel(frame, 0);
  if (warped) panel(warped, w + gap);
  const s = Math.max(1, Math.floor(480 / w));
  const fs = 14;
  const head = 3 * fs + 10;
  const W = cw * s;
  const H = h * s + head;
  const box = registeredBox(w, h, partBox(reference), f).map((p) => `${(p.x * s).toFixed(1)},${(p.y * s + head).toFixed(1)}`).join(' ');
  const c = { x: ((w - 1) / 2) * s, y: ((h - 1) / 2) * s + head };
  const sign = (v: number, d: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(d)}`;
  const line1 = `${f.ok ? 'REGISTERED' : 'NOT REGISTERED'} · shift ${sign(f.dx, 2)}, ${sign(f.dy, 2)} px · rotation ${sign(f.angleDeg, 2)}° · quality ${f.quality.toFixed(3)} (min ${f.minQuality})`;
  const line2 = f.reason ? f.reason : 'red: golden reference · cyan: frame · grey where they agree';
  const esc = (t: string): string => t.replace(/[<&>]/g, '');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">`
    + `<rect x="0" y="0" width="${W}" height="${head}" fill="#1b1f24"/>`
    + `<text x="6" y="${fs + 4}" font-family="sans-serif" font-size="${fs}" font-weight="bold" fill="${f.ok ? '#66bb6a' : '#ef5350'}">${esc(line1)}</text>`
    + `<text x="6" y="${2 * fs + 8}" font-family="sans-serif" font-size="${fs - 2}" fill="#dfe4ea">${esc(line2)}</text>`
    + `<text x="6" y="${3 * fs + 8}" font-family="sans-serif" font-size="${fs - 2}" fill="#9aa5b1">left: the frame as seen, yellow: where the part was found · right: ${warped ? 'the frame warped onto the reference' : 'no warp'}</text>`
    + (Number.isFinite(f.dx + f.dy + f.angleDeg) ? `<polygon points="${box}" fill="none" stroke="#ffd54f" stroke-width="2"/>`
      + `<line x1="${c.x}" y1="${c.y}" x2="${c.x + f.dx * s}" y2="${c.y + f.dy * s}" stroke="#ffd54f" stroke-width="2"/>`
      + `<circle cx="${c.x}" cy="${c.y}" r="3" fill="#ffd54f"/>` : '')
    + '</svg>';
  const scaled = await sharp(rgb, { raw: { width: cw, height: h, channels: 3 } })
    .resize({ width: W, height: h * s, kernel: 'nearest' }).extend({ top: head, background: '#1b1f24' }).raw().toBuffer();
  return sharp(scaled, { raw: { width: W, height: H, channels: 3 } }).composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png({ compressionLevel: 3 }).toBuffer();
}
