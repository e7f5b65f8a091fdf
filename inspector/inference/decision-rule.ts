/**
 * The package's decision rule, as the station applies it (manifest `decision`):
 *
 * - the threshold: `classThresholds[c]` for a package with a single defect class c,
 *   else `threshold`; an image score at or above it is a defect candidate;
 * - the minimum defect area: with a map output, the candidate is a reject only if the
 *   map cells at or above the threshold cover at least `minDefectAreaPx` frame pixels.
 *
 * Multi-class outputs (segmentation with K channels, classification probabilities)
 * are decided on the image score with the package threshold; their per-class
 * thresholds are validated and carried in the package for the tools that read them.
 */
import type { Manifest } from './manifest-schema.js';

export function effectiveThreshold(manifest: Manifest): number {
  const { decision, outputs } = manifest;
  const perClass = (decision as { classThresholds?: Record<string, number> }).classThresholds;
  if (perClass && outputs.defectClasses.length === 1) {
    const t = perClass[outputs.defectClasses[0]!];
    if (t !== undefined) return t;
  }
  return decision.threshold;
}

/** Frame pixels covered by one cell of a single-channel map; NaN when the area cannot be measured. */
export function mapCellAreaPx(manifest: Manifest, frameWidth: number, frameHeight: number): number {
  const shape = manifest.outputs.map?.shape;
  if (!shape || shape.length < 2) return Number.NaN;
  const channels = shape.length >= 3 ? shape[shape.length - 3]! : 1;
  if (channels !== 1) return Number.NaN;
  const h = shape[shape.length - 2]!;
  const w = shape[shape.length - 1]!;
  return (frameWidth * frameHeight) / (w * h);
}

/** Area (frame pixels) of the map cells at or above the threshold. No allocation. */
export function defectAreaPx(map: Float32Array, threshold: number, cellAreaPx: number): number {
  if (!Number.isFinite(cellAreaPx)) return Number.NaN;
  let n = 0;
  for (let i = 0; i < map.length; i++) if (map[i]! >= threshold) n++;
  return n * cellAreaPx;
}
