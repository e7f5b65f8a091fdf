/**
 * Synthetic checkerboard views with a known camera: render a board, project
 * it through a known camera matrix, distortion and pose, add sensor noise.
 * The tests calibrate from these and compare with the truth; the same code
 * makes fixtures for the CLI (`scripts/generate-calibration-boards.ts`).
 *
 * Rendering runs backwards, per output pixel: distorted pixel → undistorted
 * normalised ray → board plane (inverse of the pose homography) → colour.
 * Each pixel averages a 3x3 grid of samples so edges are anti-aliased the way
 * a real sensor integrates them (sub-pixel corner refinement needs that).
 */
import type { GrayImage } from '../inspector/core/gray-image.js';
import { type CameraModel, invert3, projectPoints, rodrigues, undistortNormalized } from './camera-model.js';

export interface BoardSpec {
  /** inner corners per row and per column (OpenCV's patternSize), e.g. 9x6 */
  cols: number;
  rows: number;
  squareMm: number;
}

export interface Pose {
  /** Rodrigues rotation board → camera */
  rvec: [number, number, number];
  /** board origin in the camera frame, mm */
  tvec: [number, number, number];
}

export interface RenderOptions {
  width: number;
  height: number;
  /** std-dev of additive Gaussian noise in grey levels */
  noise?: number;
  seed?: number;
  /** grey levels of the dark and light squares and the background */
  dark?: number;
  light?: number;
  background?: number;
  /** extra Gaussian-like blur: samples spread over this many pixels (defocus); 1 = none */
  blur?: number;
}

/** The board's inner corners in board coordinates (mm, Z = 0), row by row: OpenCV's order. */
export function boardObjectPoints(b: BoardSpec): Array<{ x: number; y: number; z: number }> {
  const pts: Array<{ x: number; y: number; z: number }> = [];
  for (let r = 0; r < b.rows; r++) for (let c = 0; c < b.cols; c++) pts.push({ x: c * b.squareMm, y: r * b.squareMm, z: 0 });
  return pts;
}

/** Deterministic PRNG (mulberry32) and a Gaussian from it. */
export function rng(seed: number): { uniform(): number; gauss(): number } {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { uniform, gauss: () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform()) };
}

/** Render one view of the board. */
export function renderBoard(cam: CameraModel, board: BoardSpec, pose: Pose, o: RenderOptions): GrayImage {
  const { width, height } = o;
  const dark = o.dark ?? 30;
  const light = o.light ?? 220;
  const bg = o.background ?? 90;
  const s = board.squareMm;
  // board extent: one square beyond the outer inner corners, then a white margin of one square
  const x0 = -s; const x1 = board.cols * s;
  const y0 = -s; const y1 = board.rows * s;
  const mx0 = x0 - s; const mx1 = x1 + s;
  const my0 = y0 - s; const my1 = y1 + s;
  const R = rodrigues(pose.rvec);
  // normalised image point ~ [r1 r2 t] · [X Y 1]
  const Hinv = invert3([R[0]!, R[1]!, pose.tvec[0], R[3]!, R[4]!, pose.tvec[1], R[6]!, R[7]!, pose.tvec[2]]);
  const out = new Uint8Array(width * height);
  const p = { x: 0, y: 0 };
  const spread = Math.max(1, o.blur ?? 1);
  const offs = [-1 / 3, 0, 1 / 3].map((d) => d * spread);
  // board coordinates of every pixel centre of a row (NaN: behind the camera); three rows kept
  // so each pixel's 3x3 samples come from the local derivative instead of 9 distortion inversions
  const boardRow = (v: number, X: Float64Array, Y: Float64Array): void => {
    for (let u = 0; u < width; u++) {
      undistortNormalized(cam, (u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, p, 8);
      const w = Hinv[6]! * p.x + Hinv[7]! * p.y + Hinv[8]!;
      X[u] = w > 0 ? (Hinv[0]! * p.x + Hinv[1]! * p.y + Hinv[2]!) / w : Number.NaN;
      Y[u] = w > 0 ? (Hinv[3]! * p.x + Hinv[4]! * p.y + Hinv[5]!) / w : Number.NaN;
    }
  };
  const shade = (X: number, Y: number): number => {
    if (!(X >= mx0 && X < mx1 && Y >= my0 && Y < my1)) return bg;
    if (X < x0 || X >= x1 || Y < y0 || Y >= y1) return light;
    return ((Math.floor(X / s) + Math.floor(Y / s)) & 1) === 0 ? dark : light;
  };
  const rows = [0, 1, 2].map(() => ({ X: new Float64Array(width), Y: new Float64Array(width) }));
  boardRow(-1, rows[0]!.X, rows[0]!.Y);
  boardRow(0, rows[1]!.X, rows[1]!.Y);
  const g = rng(o.seed ?? 1);
  const noise = o.noise ?? 0;
  for (let v = 0; v < height; v++) {
    const [prev, cur, next] = [rows[(v) % 3]!, rows[(v + 1) % 3]!, rows[(v + 2) % 3]!];
    boardRow(v + 1, next.X, next.Y);
    for (let u = 0; u < width; u++) {
      const X = cur.X[u]!; const Y = cur.Y[u]!;
      const l = u > 0 ? u - 1 : u; const r = u < width - 1 ? u + 1 : u;
      const dXu = (cur.X[r]! - cur.X[l]!) / (r - l); const dYu = (cur.Y[r]! - cur.Y[l]!) / (r - l);
      const dXv = (next.X[u]! - prev.X[u]!) / 2; const dYv = (next.Y[u]! - prev.Y[u]!) / 2;
      let acc = 0;
      for (const dy of offs) for (const dx of offs) acc += shade(X + dXu * dx + dXv * dy, Y + dYu * dx + dYv * dy);
      const val = acc / 9 + (noise > 0 ? noise * g.gauss() : 0);
      out[v * width + u] = val < 0 ? 0 : val > 255 ? 255 : Math.round(val);
    }
  }
  return { width, height, data: out };
}

/** Where the board's inner corners land in the image (ground truth for a view). */
export function trueCorners(cam: CameraModel, board: BoardSpec, pose: Pose): Array<{ x: number; y: number }> {
  return projectPoints(cam, pose.rvec, pose.tvec, boardObjectPoints(board));
}

/**
 * `n` varied poses that keep the whole board in view: the board centre moves
 * over the image and the board tilts up to ±`maxTiltDeg` about both axes and
 * rolls, at a distance where it covers roughly a third to a half of the width.
 */
export function variedPoses(cam: CameraModel, board: BoardSpec, size: { width: number; height: number }, n: number,
  seed = 7, maxTiltDeg = 35): Pose[] {
  const g = rng(seed);
  const poses: Pose[] = [];
  const bw = (board.cols + 3) * board.squareMm; // with margins
  const cxB = ((board.cols - 1) * board.squareMm) / 2;
  const cyB = ((board.rows - 1) * board.squareMm) / 2;
  const deg = Math.PI / 180;
  let guard = 0;
  while (poses.length < n && guard++ < n * 200) {
    const i = poses.length;
    const tiltX = (g.uniform() * 2 - 1) * maxTiltDeg * deg;
    const tiltY = (g.uniform() * 2 - 1) * maxTiltDeg * deg;
    const roll = (g.uniform() * 2 - 1) * 20 * deg;
    const R = mul3(rodrigues([0, 0, roll]), mul3(rodrigues([tiltX, 0, 0]), rodrigues([0, tiltY, 0])));
    const coverage = 0.35 + 0.2 * g.uniform();
    const Z = (bw * cam.fx) / (coverage * size.width);
    // aim the board centre at a point spread over a 3x3 grid of the image (jittered)
    const gx = ((i % 3) - 1) * 0.28 + (g.uniform() - 0.5) * 0.1;
    const gy = ((Math.floor(i / 3) % 3) - 1) * 0.25 + (g.uniform() - 0.5) * 0.1;
    const u = size.width * (0.5 + gx);
    const v = size.height * (0.5 + gy);
    const c = { x: ((u - cam.cx) / cam.fx) * Z, y: ((v - cam.cy) / cam.fy) * Z, z: Z };
    // t = c − R·(cxB, cyB, 0): the board's centre lands on c
    const t: [number, number, number] = [
      c.x - (R[0]! * cxB + R[1]! * cyB), c.y - (R[3]! * cxB + R[4]! * cyB), c.z - (R[6]! * cxB + R[7]! * cyB)];
    const pose: Pose = { rvec: toRodrigues(R), tvec: t };
    // whole board (with its margin) inside the image, 10 px in
    const outline = projectPoints(cam, pose.rvec, pose.tvec, [
      { x: -2 * board.squareMm, y: -2 * board.squareMm, z: 0 }, { x: (board.cols + 1) * board.squareMm, y: -2 * board.squareMm, z: 0 },
      { x: -2 * board.squareMm, y: (board.rows + 1) * board.squareMm, z: 0 }, { x: (board.cols + 1) * board.squareMm, y: (board.rows + 1) * board.squareMm, z: 0 }]);
    if (outline.every((q) => q.x > 10 && q.y > 10 && q.x < size.width - 10 && q.y < size.height - 10)) poses.push(pose);
  }
  return poses;
}

function mul3(a: number[], b: number[]): number[] {
  const o = new Array<number>(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) o[r * 3 + c]! += a[r * 3 + k]! * b[k * 3 + c]!;
  return o;
}

/** Rotation matrix → Rodrigues vector. */
export function toRodrigues(R: number[]): [number, number, number] {
  const cos = Math.min(1, Math.max(-1, (R[0]! + R[4]! + R[8]! - 1) / 2));
  const th = Math.acos(cos);
  if (th < 1e-9) return [0, 0, 0];
  const k = th / (2 * Math.sin(th));
  return [(R[7]! - R[5]!) * k, (R[2]! - R[6]!) * k, (R[3]! - R[1]!) * k];
}
