/**
 * Where a model's map cells lie in the scored image, for every resize mode.
 *
 * `linear`/`area` stretch the image to the model input, so a cell covers
 * (W/w) x (H/h) image pixels (`scaleForFrame`). `letterbox` keeps the aspect
 * ratio and pads (see `inspector/inference/preprocess-graph.ts`): a cell covers
 * (modelW/w)/s x (modelH/h)/s image pixels, offset by the padding, and cells in
 * the padding lie outside the image (boxes are clipped to it).
 */
import { mapCellAreaPx } from '../inference/decision-rule.js';
import { regionsFromMap, scaleForFrame, type DefectRegion } from '../inference/defect-regions.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { letterboxGeometry } from '../inference/preprocess-graph.js';
import { letterboxCellAreaPx } from '../inference/letterbox-map.js';

/** Image pixels per map cell (for minDefectAreaPx), NaN without a single-channel map. */
export function cellAreaPx(manifest: Manifest, mapWidth: number, mapHeight: number, width: number, height: number): number {
  const area = mapCellAreaPx(manifest, width, height); // letterbox-aware (the station uses the same)
  return Number.isFinite(area) && manifest.input.resize === 'letterbox' ? letterboxCellAreaPx(manifest, mapWidth, mapHeight, width, height) : area;
}

/** Defect regions of a map as boxes in image pixels (clipped to the image; empty ones dropped). */
export function regionsInImage(manifest: Manifest, map: ArrayLike<number>, mapWidth: number, mapHeight: number,
  width: number, height: number, threshold: number, minDefectAreaPx: number): DefectRegion[] {
  if (manifest.input.resize !== 'letterbox') {
    return regionsFromMap(map, mapWidth, mapHeight, threshold, minDefectAreaPx, scaleForFrame(mapWidth, mapHeight, width, height));
  }
  const [, , mh, mw] = manifest.input.shape;
  if (mw === width && mh === height) {
    return regionsFromMap(map, mapWidth, mapHeight, threshold, minDefectAreaPx, scaleForFrame(mapWidth, mapHeight, width, height));
  }
  const { scale, top, left } = letterboxGeometry({ width, height }, mw, mh);
  const cell = { x: mw / mapWidth / scale, y: mh / mapHeight / scale };
  const dx = left / scale;
  const dy = top / scale;
  const out: DefectRegion[] = [];
  // regions in cell units (scale 1), then one rounding outwards after the offset
  for (const r of regionsFromMap(map, mapWidth, mapHeight, threshold, minDefectAreaPx / (cell.x * cell.y), 1)) {
    const x0 = Math.max(0, Math.floor(r.x * cell.x - dx));
    const y0 = Math.max(0, Math.floor(r.y * cell.y - dy));
    const x1 = Math.min(width, Math.ceil((r.x + r.w) * cell.x - dx));
    const y1 = Math.min(height, Math.ceil((r.y + r.h) * cell.y - dy));
    if (x1 > x0 && y1 > y0) out.push({ ...r, x: x0, y: y0, w: x1 - x0, h: y1 - y0, areaPx: r.areaPx * cell.x * cell.y });
  }
  return out;
}
