/**
 * The part-render worker: turns a stored anomaly map (8-bit gray PNG, written by the
 * image writer) into the RGBA heatmap PNG the review page overlays, at a width the
 * server already bounded by the part's own resolution (routes/part-render.ts).
 *
 * Everything runs on this one thread, at nice 10: the file is read with readFileSync,
 * the PNG inflated and unfiltered in JS (zlib's sync calls run on the calling thread),
 * resized (bilinear) and coloured in JS, and deflated with deflateSync. Nothing goes to
 * the process-wide libuv pool or to libvips' threads, which the station's image writer
 * uses for the parts on the line; one render at a time, so abuse costs at most this
 * one low-priority thread. A PNG this decoder does not handle (interlaced, 16-bit,
 * palette) is refused as unreadable: the image writer never writes one.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import { HEAT_LUT_U32 } from '../heat-lut.js';

export interface RenderJob { id: number; mapPath: string; width: number }
export type RenderReply =
  | { id: number; ok: true; png: ArrayBuffer; width: number; height: number }
  | { id: number; ok: false; error: { code: string; message: string } };

/** the largest heatmap this worker renders (pixels) */
export const MAX_RENDER_PIXELS = 40_000_000;
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

class Unreadable extends Error {}

/** 8-bit non-interlaced PNG → one gray byte per pixel (gray: itself; gray+alpha: gray; RGB(A): luma). */
export function decodeGrayPng(buf: Buffer): { width: number; height: number; data: Uint8Array } {
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Unreadable('not a PNG');
  let off = 8;
  let width = 0; let height = 0; let channels = 0;
  const idat: Buffer[] = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (body.length !== len) throw new Unreadable('truncated PNG');
    if (type === 'IHDR') {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4);
      const depth = body[8]; const colour = body[9]; const interlace = body[12];
      channels = ({ 0: 1, 4: 2, 2: 3, 6: 4 } as Record<number, number>)[colour!] ?? 0;
      if (depth !== 8 || channels === 0 || interlace !== 0) throw new Unreadable(`PNG of depth ${depth}, colour type ${colour}, interlace ${interlace}`);
      if (width < 1 || height < 1 || width * height > MAX_RENDER_PIXELS) throw new Unreadable(`PNG of ${width}x${height}`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  if (!channels || idat.length === 0) throw new Unreadable('PNG without IHDR or IDAT');
  const stride = width * channels;
  let raw: Buffer;
  try { raw = inflateSync(Buffer.concat(idat), { maxOutputLength: (stride + 1) * height }); } catch (err) { throw new Unreadable(`PNG data: ${(err as Error).message}`); }
  if (raw.length < (stride + 1) * height) throw new Unreadable('PNG data too short');
  const px = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[row + x - channels]! : 0;
      const b = y > 0 ? px[prev + x]! : 0;
      const c = y > 0 && x >= channels ? px[prev + x - channels]! : 0;
      const v = raw[src + x]!;
      let out: number;
      switch (filter) {
        case 0: out = v; break;
        case 1: out = v + a; break;
        case 2: out = v + b; break;
        case 3: out = v + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c; const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c);
          out = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c); break;
        }
        default: throw new Unreadable(`PNG row filter ${filter}`);
      }
      px[row + x] = out & 255;
    }
  }
  if (channels <= 2) {
    if (channels === 1) return { width, height, data: px };
    const g = new Uint8Array(width * height);
    for (let i = 0; i < g.length; i++) g[i] = px[i * 2]!;
    return { width, height, data: g };
  }
  const g = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < g.length; i++, j += channels) g[i] = Math.round(0.2126 * px[j]! + 0.7152 * px[j + 1]! + 0.0722 * px[j + 2]!);
  return { width, height, data: g };
}


/** Gray → RGBA heatmap at `width` (height keeps the aspect ratio), bilinear with half-pixel centres. */
export function heatmapRgba(g: { width: number; height: number; data: Uint8Array }, width: number): { width: number; height: number; rgba: Uint8Array } {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round((g.height * w) / g.width));
  if (w * h > MAX_RENDER_PIXELS) throw new Unreadable(`a ${w}x${h} heatmap is too large`);
  const out = new Uint32Array(w * h);
  if (w === g.width && h === g.height) {
    for (let i = 0; i < out.length; i++) out[i] = HEAT_LUT_U32[g.data[i]!]!;
  } else {
    const x0 = new Int32Array(w); const x1 = new Int32Array(w); const fx = new Float32Array(w);
    for (let x = 0; x < w; x++) {
      const s = Math.min(g.width - 1, Math.max(0, ((x + 0.5) * g.width) / w - 0.5));
      x0[x] = Math.floor(s); x1[x] = Math.min(g.width - 1, x0[x]! + 1); fx[x] = s - x0[x]!;
    }
    for (let y = 0; y < h; y++) {
      const s = Math.min(g.height - 1, Math.max(0, ((y + 0.5) * g.height) / h - 0.5));
      const r0 = Math.floor(s) * g.width; const r1 = Math.min(g.height - 1, Math.floor(s) + 1) * g.width; const fy = s - Math.floor(s);
      for (let x = 0; x < w; x++) {
        const a = g.data[r0 + x0[x]!]! + (g.data[r0 + x1[x]!]! - g.data[r0 + x0[x]!]!) * fx[x]!;
        const b = g.data[r1 + x0[x]!]! + (g.data[r1 + x1[x]!]! - g.data[r1 + x0[x]!]!) * fx[x]!;
        out[y * w + x] = HEAT_LUT_U32[Math.round(a + (b - a) * fy)]!;
      }
    }
  }
  return { width: w, height: h, rgba: new Uint8Array(out.buffer) };
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body, crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}

/** RGBA → PNG (8-bit, colour type 6, Sub filter, zlib level 3). */
export function encodeRgbaPng(width: number, height: number, rgba: Uint8Array): Buffer {
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1); const r = y * stride;
    raw[o] = 1; // Sub
    for (let x = 0; x < stride; x++) raw[o + 1 + x] = (rgba[r + x]! - (x >= 4 ? rgba[r + x - 4]! : 0)) & 255;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 3 })), chunk('IEND', Buffer.alloc(0))]);
}

const port = parentPort;
if (port) {
  try { os.setPriority(0, (workerData as { nice?: number } | undefined)?.nice ?? 10); } catch { /* not permitted: keep the inherited priority */ }
  port.on('message', (job: RenderJob) => {
    let reply: RenderReply;
    try {
      const map = decodeGrayPng(readFileSync(job.mapPath));
      const { width, height, rgba } = heatmapRgba(map, job.width);
      const png = encodeRgbaPng(width, height, rgba);
      const ab = png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength) as ArrayBuffer;
      reply = { id: job.id, ok: true, png: ab, width, height };
      port.postMessage(reply, [ab]);
      return;
    } catch (err) {
      const code = err instanceof Unreadable ? 'INSPECTOR_IMAGE_UNREADABLE' : (err as { code?: string }).code === 'ENOENT' ? 'INSPECTOR_IMAGE_MISSING' : 'INSPECTOR_IMAGE_UNREADABLE';
      reply = { id: job.id, ok: false, error: { code, message: (err as Error).message } };
    }
    port.postMessage(reply);
  });
}
