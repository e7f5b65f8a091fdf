/**
 * Pixels → millimetres with the station's plane calibration (the local Jacobian
 * of the image→plane homography, `localScale` from calibration/camera-model.ts,
 * which has no Node imports so the UI bundles the same code), and a hook that
 * fetches the current plane once per page.
 */
import { useEffect, useState } from 'preact/hooks';
import { localScale } from '../../../calibration/camera-model.js';
import { calibrationApi, type CalDoc, type Region } from '../api.js';

export type Plane = NonNullable<CalDoc['plane']>;

/** Shoelace area of a polygon in px². */
function polygonArea(pts: Array<[number, number]>): number {
  let a = 0;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) a += (pts[j]![0] + pts[i]![0]) * (pts[j]![1] - pts[i]![1]);
  return Math.abs(a) / 2;
}

/** A labelled region's size in mm (width × height of its bounds) and mm² (its area), scaled at its centre. */
export function regionMm(plane: Plane, r: Region): { widthMm: number; heightMm: number; areaMm2: number } {
  let x0: number, y0: number, x1: number, y1: number, areaPx: number;
  if (r.kind === 'box') { x0 = r.x; y0 = r.y; x1 = r.x + r.w; y1 = r.y + r.h; areaPx = r.w * r.h; } else {
    const xs = r.points.map((p) => p[0]); const ys = r.points.map((p) => p[1]);
    x0 = Math.min(...xs); x1 = Math.max(...xs); y0 = Math.min(...ys); y1 = Math.max(...ys); areaPx = polygonArea(r.points);
  }
  const s = localScale(plane.homography, (x0 + x1) / 2, (y0 + y1) / 2);
  return { widthMm: (x1 - x0) * s.x, heightMm: (y1 - y0) * s.y, areaMm2: areaPx * s.area };
}

export const fmtMm = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The current plane calibration (null: none, or the calibration API is not there). */
export function usePlane(): Plane | null {
  const [plane, setPlane] = useState<Plane | null>(null);
  useEffect(() => {
    let live = true;
    calibrationApi.current().then((c) => { if (live) setPlane(c?.doc.plane ?? null); }, () => undefined);
    return () => { live = false; };
  }, []);
  return plane;
}
