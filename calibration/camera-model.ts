/**
 * The pinhole camera with OpenCV's 5-coefficient distortion model
 * (k1, k2, p1, p2, k3), in plain JS so it runs anywhere (workers, tests, the
 * undistortion tables) without a native call.
 *
 * Normalised coordinates (x, y) are those of a ray (x, y, 1) in the camera
 * frame; pixels are u = fx·x + cx, v = fy·y + cy (no skew, like OpenCV's
 * default calibration).
 */

export interface CameraModel {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  /** [k1, k2, p1, p2, k3] */
  dist: [number, number, number, number, number];
}

/** Distort normalised coordinates (x, y) → (xd, yd), written into `out`. */
export function distortNormalized(m: CameraModel, x: number, y: number, out: { x: number; y: number }): void {
  const [k1, k2, p1, p2, k3] = m.dist;
  const r2 = x * x + y * y;
  const radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
  out.x = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x);
  out.y = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y;
}

/**
 * Invert the distortion by fixed-point iteration (what cv::undistortPoints
 * does): good to far below a pixel for the mild-to-moderate distortion of
 * machine-vision lenses.
 */
export function undistortNormalized(m: CameraModel, xd: number, yd: number, out: { x: number; y: number }, iterations = 20): void {
  const [k1, k2, p1, p2, k3] = m.dist;
  let x = xd;
  let y = yd;
  for (let i = 0; i < iterations; i++) {
    const r2 = x * x + y * y;
    const radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
    const dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x);
    const dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y;
    x = (xd - dx) / radial;
    y = (yd - dy) / radial;
  }
  out.x = x;
  out.y = y;
}

/** Pixel (distorted, as the camera sees it) → ideal pixel of the same camera without distortion. */
export function undistortPixel(m: CameraModel, u: number, v: number): { x: number; y: number } {
  const p = { x: 0, y: 0 };
  undistortNormalized(m, (u - m.cx) / m.fx, (v - m.cy) / m.fy, p);
  return { x: p.x * m.fx + m.cx, y: p.y * m.fy + m.cy };
}

/** Ideal (undistorted) pixel → the pixel where the camera actually sees it. */
export function distortPixel(m: CameraModel, u: number, v: number): { x: number; y: number } {
  const p = { x: 0, y: 0 };
  distortNormalized(m, (u - m.cx) / m.fx, (v - m.cy) / m.fy, p);
  return { x: p.x * m.fx + m.cx, y: p.y * m.fy + m.cy };
}

/** 3x3 row-major rotation from a Rodrigues vector. */
export function rodrigues(r: [number, number, number]): number[] {
  const th = Math.hypot(r[0], r[1], r[2]);
  if (th < 1e-12) return [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const [x, y, z] = [r[0] / th, r[1] / th, r[2] / th];
  const c = Math.cos(th);
  const s = Math.sin(th);
  const C = 1 - c;
  return [
    c + x * x * C, x * y * C - z * s, x * z * C + y * s,
    y * x * C + z * s, c + y * y * C, y * z * C - x * s,
    z * x * C - y * s, z * y * C + x * s, c + z * z * C,
  ];
}

/** Project 3-D points (X, Y, Z in the board frame) through a pose and the camera: OpenCV's projectPoints. */
export function projectPoints(m: CameraModel, rvec: [number, number, number], tvec: [number, number, number],
  points: Array<{ x: number; y: number; z: number }>): Array<{ x: number; y: number }> {
  const R = rodrigues(rvec);
  const d = { x: 0, y: 0 };
  return points.map((p) => {
    const X = R[0]! * p.x + R[1]! * p.y + R[2]! * p.z + tvec[0];
    const Y = R[3]! * p.x + R[4]! * p.y + R[5]! * p.z + tvec[1];
    const Z = R[6]! * p.x + R[7]! * p.y + R[8]! * p.z + tvec[2];
    distortNormalized(m, X / Z, Y / Z, d);
    return { x: d.x * m.fx + m.cx, y: d.y * m.fy + m.cy };
  });
}

/** Inverse of a 3x3 row-major matrix (throws when singular). */
export function invert3(a: readonly number[]): number[] {
  const [a0, a1, a2, a3, a4, a5, a6, a7, a8] = a as [number, number, number, number, number, number, number, number, number];
  const c0 = a4 * a8 - a5 * a7;
  const c1 = a5 * a6 - a3 * a8;
  const c2 = a3 * a7 - a4 * a6;
  const det = a0 * c0 + a1 * c1 + a2 * c2;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-15) throw new Error('singular 3x3 matrix');
  const k = 1 / det;
  return [
    c0 * k, (a2 * a7 - a1 * a8) * k, (a1 * a5 - a2 * a4) * k,
    c1 * k, (a0 * a8 - a2 * a6) * k, (a2 * a3 - a0 * a5) * k,
    c2 * k, (a1 * a6 - a0 * a7) * k, (a0 * a4 - a1 * a3) * k,
  ];
}

/** Apply a 3x3 homography (row-major) to a point. */
export function applyHomography(h: readonly number[], x: number, y: number): { x: number; y: number } {
  const w = h[6]! * x + h[7]! * y + h[8]!;
  return { x: (h[0]! * x + h[1]! * y + h[2]!) / w, y: (h[3]! * x + h[4]! * y + h[5]!) / w };
}

/** Local scale of a homography at an image point: mm per pixel along x and y, and mm² per px². */
export function localScale(h: readonly number[], u: number, v: number): { x: number; y: number; area: number } {
  const w = h[6]! * u + h[7]! * v + h[8]!;
  const X = (h[0]! * u + h[1]! * v + h[2]!) / w;
  const Y = (h[3]! * u + h[4]! * v + h[5]!) / w;
  const j00 = (h[0]! - h[6]! * X) / w; const j01 = (h[1]! - h[7]! * X) / w;
  const j10 = (h[3]! - h[6]! * Y) / w; const j11 = (h[4]! - h[7]! * Y) / w;
  return { x: Math.hypot(j00, j10), y: Math.hypot(j01, j11), area: Math.abs(j00 * j11 - j01 * j10) };
}
