/**
 * Anomaly maps in the browser: the station stores each map as an 8-bit PNG at
 * the model's map resolution (min..max of that map → 0..255). Here it is turned
 * into a coloured, semi-transparent overlay, and its hottest blobs are found
 * (to explain a reject and to place the overlay's peak markers).
 */

export interface PeakRegion { x: number; y: number; w: number; h: number; peak: number; areaPx: number }

export function loadImage(url: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = 'async';
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${url}`));
    img.src = url;
  });
}

/** 0..255 → a transparent-to-red "inferno-ish" ramp; low values fully transparent. */
function ramp(v: number): [number, number, number, number] {
  const t = v / 255;
  if (t < 0.25) return [0, 0, 0, 0];
  const r = 255;
  const g = Math.round(255 * Math.max(0, Math.min(1, (t - 0.55) / 0.45)));
  const b = Math.round(60 * Math.max(0, 1 - t * 2));
  const a = Math.round(255 * Math.min(0.75, (t - 0.25) * 1.2));
  return [r, g, b, a];
}

/**
 * Intensity values of a map image: a gray PNG, or the server's RGBA heatmap whose
 * ramp has red = min(1, 2t) and green = max(0, 2t - 1), so t = (R + G) / 2 for both.
 */
export function mapValues(img: HTMLImageElement): { w: number; h: number; v: Uint8ClampedArray } {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  const v = new Uint8ClampedArray(c.width * c.height);
  for (let i = 0; i < v.length; i++) v[i] = (px[i * 4]! + px[i * 4 + 1]!) >> 1;
  return { w: c.width, h: c.height, v };
}

/** A canvas (at map resolution) holding the coloured overlay; draw it scaled over the frame. */
export function colourise(m: { w: number; h: number; v: Uint8ClampedArray }): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = m.w;
  c.height = m.h;
  const ctx = c.getContext('2d')!;
  const out = ctx.createImageData(m.w, m.h);
  for (let i = 0; i < m.v.length; i++) {
    const [r, g, b, a] = ramp(m.v[i]!);
    out.data[i * 4] = r; out.data[i * 4 + 1] = g; out.data[i * 4 + 2] = b; out.data[i * 4 + 3] = a;
  }
  ctx.putImageData(out, 0, 0);
  return c;
}

/**
 * Connected blobs above `level` (0..255), biggest peak first, in frame pixels
 * (`fw`×`fh`). 4-connectivity flood fill: maps are small (≤ 256²).
 */
export function peakRegions(m: { w: number; h: number; v: Uint8ClampedArray }, fw: number, fh: number, level = 170, max = 3): PeakRegion[] {
  const { w, h, v } = m;
  const seen = new Uint8Array(w * h);
  const stack: number[] = [];
  const found: PeakRegion[] = [];
  for (let i = 0; i < v.length; i++) {
    if (seen[i] || v[i]! < level) continue;
    let x0 = w, y0 = h, x1 = 0, y1 = 0, peak = 0, area = 0;
    stack.push(i);
    seen[i] = 1;
    while (stack.length) {
      const j = stack.pop()!;
      const x = j % w, y = (j / w) | 0;
      area++;
      if (v[j]! > peak) peak = v[j]!;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      const n = [x > 0 ? j - 1 : -1, x < w - 1 ? j + 1 : -1, y > 0 ? j - w : -1, y < h - 1 ? j + w : -1];
      for (const k of n) if (k >= 0 && !seen[k] && v[k]! >= level) { seen[k] = 1; stack.push(k); }
    }
    const sx = fw / w, sy = fh / h;
    found.push({ x: x0 * sx, y: y0 * sy, w: (x1 - x0 + 1) * sx, h: (y1 - y0 + 1) * sy, peak: peak / 255, areaPx: Math.round(area * sx * sy) });
  }
  return found.sort((a, b) => b.peak - a.peak || b.areaPx - a.areaPx).slice(0, max);
}
