/**
 * Defect regions from a model's map: 8-connected components of the cells at
 * or above the threshold, as boxes in FRAME pixels.
 *
 *   const regions = regionsFromMap(map, 40, 32, 0.5, 0, { x: 32, y: 32 });
 *   // [{ x, y, w, h, areaPx, peak }, …]  largest peak first
 *
 * Geometry (the manifest's rule): map cell (i, j) of a w×h map covers frame
 * pixels [j·sx, (j+1)·sx) × [i·sy, (i+1)·sy), with sx = frameWidth / w and
 * sy = frameHeight / h. A region's box is the union of its cells' boxes,
 * rounded outwards to whole pixels; `areaPx` is its cell count × sx·sy
 * (the defect area in frame pixels, not the box area). Components smaller
 * than `minAreaPx` are dropped (0 = keep all). Pure JS, no OpenCV: small
 * maps (32×40 cells take a few microseconds) and usable on any thread.
 */

export interface DefectRegion {
  /** box in frame pixels: [x, x+w) × [y, y+h) */
  x: number;
  y: number;
  w: number;
  h: number;
  /** cells in the region × frame pixels per cell */
  areaPx: number;
  /** highest map value in the region */
  peak: number;
}

/** frame pixels per map cell, one number for both axes or per axis */
export type ScaleToFrame = number | { x: number; y: number };

/** The per-axis scale that maps a w×h map onto a frameWidth×frameHeight frame. */
export function scaleForFrame(mapWidth: number, mapHeight: number, frameWidth: number, frameHeight: number): { x: number; y: number } {
  return { x: frameWidth / mapWidth, y: frameHeight / mapHeight };
}

/**
 * Connected components (8-connectivity) of `values[i] >= threshold` on a
 * w×h grid. Returns the label per cell (0 = background, 1..n) and n.
 * `labels` may be passed in to reuse memory.
 */
export function labelComponents(values: ArrayLike<number>, w: number, h: number, threshold: number,
  labels: Int32Array = new Int32Array(w * h)): { labels: Int32Array; count: number } {
  if (values.length < w * h) throw new RangeError(`map has ${values.length} values, expected ${w}x${h}`);
  labels.fill(0, 0, w * h);
  const stack = new Int32Array(w * h);
  let count = 0;
  for (let start = 0; start < w * h; start++) {
    if (labels[start] !== 0 || !(values[start]! >= threshold)) continue;
    const label = ++count;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    while (top > 0) {
      const p = stack[--top]!;
      const py = (p / w) | 0;
      const px = p - py * w;
      for (let dy = -1; dy <= 1; dy++) {
        const y = py + dy;
        if (y < 0 || y >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const x = px + dx;
          if (x < 0 || x >= w || (dx === 0 && dy === 0)) continue;
          const q = y * w + x;
          if (labels[q] === 0 && values[q]! >= threshold) {
            labels[q] = label;
            stack[top++] = q;
          }
        }
      }
    }
  }
  return { labels, count };
}

/**
 * Regions of the map at or above `threshold`, in frame pixels, largest peak first.
 * NaN cells never belong to a region.
 */
export function regionsFromMap(map: ArrayLike<number>, w: number, h: number, threshold: number,
  minAreaPx: number, scaleToFrame: ScaleToFrame): DefectRegion[] {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new RangeError(`bad map size ${w}x${h}`);
  const sx = typeof scaleToFrame === 'number' ? scaleToFrame : scaleToFrame.x;
  const sy = typeof scaleToFrame === 'number' ? scaleToFrame : scaleToFrame.y;
  if (!(sx > 0) || !(sy > 0)) throw new RangeError(`bad scale ${sx}x${sy}`);
  const { labels, count } = labelComponents(map, w, h, threshold);
  if (count === 0) return [];
  const minX = new Int32Array(count + 1).fill(w);
  const minY = new Int32Array(count + 1).fill(h);
  const maxX = new Int32Array(count + 1).fill(-1);
  const maxY = new Int32Array(count + 1).fill(-1);
  const cells = new Int32Array(count + 1);
  const peak = new Float64Array(count + 1).fill(-Infinity);
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i++) {
      const l = labels[i]!;
      if (l === 0) continue;
      if (x < minX[l]!) minX[l] = x;
      if (x > maxX[l]!) maxX[l] = x;
      if (y < minY[l]!) minY[l] = y;
      if (y > maxY[l]!) maxY[l] = y;
      cells[l]!++;
      const v = map[i]!;
      if (v > peak[l]!) peak[l] = v;
    }
  }
  const out: DefectRegion[] = [];
  for (let l = 1; l <= count; l++) {
    const areaPx = cells[l]! * sx * sy;
    if (areaPx < minAreaPx) continue;
    const x0 = Math.floor(minX[l]! * sx + 1e-9);
    const y0 = Math.floor(minY[l]! * sy + 1e-9);
    const x1 = Math.ceil((maxX[l]! + 1) * sx - 1e-9);
    const y1 = Math.ceil((maxY[l]! + 1) * sy - 1e-9);
    out.push({ x: x0, y: y0, w: x1 - x0, h: y1 - y0, areaPx, peak: peak[l]! });
  }
  return out.sort((a, b) => b.peak - a.peak);
}
