/**
 * Pictures and live figures for the calibration page (used by routes/calibration.ts, server worker only):
 *  - `renderBoardView`: a board image from the lens folder with the corners found drawn on it (SVG overlay
 *    composited by sharp), or the same image undistorted with the lens calibration and the undistorted
 *    corners joined row by row, so straight rows show the fit is right;
 *  - `liveGray`: the newest camera frame at full resolution, copied out of the station's shared buffer.
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
