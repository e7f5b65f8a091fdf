/**
 * A `letterbox` package on the line: its map covers the padded model input, not
 * the frame (see `preprocess-graph.ts`: the frame is scaled by s = min(W_in/W,
 * H_in/H), centred and padded). Two things follow, both built once per model
 * runner:
 *
 * - a map cell covers (W_in/w)/s x (H_in/h)/s frame pixels, not (W/w) x (H/h)
 *   (`letterboxCellAreaPx`, used for `decision.minDefectAreaPx`);
 * - the map the station saves (and the UI lays over the frame, stretched) must
 *   cover the frame: `frameAlignedMapIndex` gives, for each cell of a w x h grid
 *   over the frame, the model map cell under its centre, and `alignMap` applies
 *   it (no allocation: the caller keeps the output buffer).
 *
 * Stretching packages (`area`, `linear`) need neither: their map covers the frame.
 */
import type { Manifest } from './manifest-schema.js';
import { letterboxGeometry } from './preprocess-graph.js';

/** Frame pixels per cell of a w x h map of a letterbox package on a frameWidth x frameHeight frame. */
export function letterboxCellAreaPx(manifest: Manifest, mapWidth: number, mapHeight: number, frameWidth: number, frameHeight: number): number {
  const [, , inH, inW] = manifest.input.shape as [number, number, number, number];
  const { scale } = letterboxGeometry({ width: frameWidth, height: frameHeight }, inW, inH);
  return ((inW / mapWidth) * (inH / mapHeight)) / (scale * scale);
}

/**
 * For a letterbox package whose input is not the frame's own size: index[i] is the model map cell
 * under the centre of cell i of a mapWidth x mapHeight grid laid over the frame. null otherwise.
 */
export function frameAlignedMapIndex(manifest: Manifest, mapWidth: number, mapHeight: number,
  frameWidth: number, frameHeight: number): Int32Array | null {
  if (manifest.input.resize !== 'letterbox' || mapWidth < 1 || mapHeight < 1) return null;
  const [, , inH, inW] = manifest.input.shape as [number, number, number, number];
  if (inW === frameWidth && inH === frameHeight) return null;
  const { resizedWidth, resizedHeight, top, left } = letterboxGeometry({ width: frameWidth, height: frameHeight }, inW, inH);
  const sx = resizedWidth / frameWidth; // what the Resize node does on each axis
  const sy = resizedHeight / frameHeight;
  const cellW = inW / mapWidth;
  const cellH = inH / mapHeight;
  const index = new Int32Array(mapWidth * mapHeight);
  for (let r = 0; r < mapHeight; r++) {
    const yIn = ((r + 0.5) * frameHeight / mapHeight) * sy + top;
    const mr = Math.min(mapHeight - 1, Math.max(0, Math.floor(yIn / cellH)));
    for (let c = 0; c < mapWidth; c++) {
      const xIn = ((c + 0.5) * frameWidth / mapWidth) * sx + left;
      const mc = Math.min(mapWidth - 1, Math.max(0, Math.floor(xIn / cellW)));
      index[r * mapWidth + c] = mr * mapWidth + mc;
    }
  }
  return index;
}

/** out[i] = map[index[i]]: the map resampled onto the frame grid. */
export function alignMap(map: Float32Array, index: Int32Array, out: Float32Array): Float32Array {
  for (let i = 0; i < index.length; i++) out[i] = map[index[i]!]!;
  return out;
}
