/**
 * Lens calibration from checkerboard views (OpenCV): find the inner corners,
 * refine them to sub-pixel, solve the camera matrix and the 5 distortion
 * coefficients, and report the RMS reprojection error.
 *
 * A set is refused, with a coded reason, when it cannot give a trustworthy
 * answer: too few views show the board, no view does, or the views are too
 * alike (the same spot, the same size, no tilt: focal length and distortion
 * are then not observable). The pose descriptors follow ROS's camera
 * calibrator: board centre X/Y, size, and perspective tilt.
 *
 * OpenCV calls are synchronous: run this in a CLI, a worker or a test.
 */
import { cv } from '../inspector/core/opencv.js';
import type { GrayImage } from '../inspector/core/gray-image.js';
import type { CameraModel } from './camera-model.js';
import { boardObjectPoints, type BoardSpec } from './synthetic-board.js';
import {
  CalibrationBadInputError, CalibrationNoBoardError, CalibrationPoorFitError, CalibrationTooFewImagesError, CalibrationTooSimilarError,
} from './errors.js';

export type Point = { x: number; y: number };

export interface ViewDescriptor {
  /** board centre, as a fraction of the image width / height */
  x: number;
  y: number;
  /** sqrt(board area / image area) */
  size: number;
  /** perspective foreshortening: max |ln(opposite side ratio)| of the outer corner quad */
  tilt: number;
}

export interface LensRules {
  /** views that must show the board (default 10) */
  minViews: number;
  /** views that must differ from each other (descriptor distance > `distinctDistance`) (default 6) */
  minDistinctViews: number;
  distinctDistance: number;
  /** views tilted by more than `tiltedThreshold` (≈ 15° of tilt) that must be present (default 2) */
  minTiltedViews: number;
  tiltedThreshold: number;
  /** spread of board centres over the image, as a fraction of each axis (default 0.2) */
  minSpread: number;
  /** an RMS reprojection error above this (px) is refused (default 1.0) */
  maxRms: number;
}

export const DEFAULT_LENS_RULES: LensRules = {
  minViews: 10, minDistinctViews: 6, distinctDistance: 0.1, minTiltedViews: 2, tiltedThreshold: 0.12, minSpread: 0.2, maxRms: 1.0,
};

export interface ViewResult {
  name: string;
  found: boolean;
  corners: Point[] | null;
  descriptor: ViewDescriptor | null;
  /** RMS reprojection error of this view after the fit (px) */
  rms: number | null;
}

export interface LensCalibration {
  camera: CameraModel;
  imageSize: { width: number; height: number };
  board: BoardSpec;
  /** overall RMS reprojection error (px) */
  rms: number;
  views: ViewResult[];
  used: number;
  distinct: number;
}

/**
 * Find a board's inner corners (sub-pixel) or null. Large images are searched
 * at half (or quarter) size first: a failed search at full size can take
 * seconds in OpenCV 4.6, and the corners are then refined at full resolution.
 */
export function detectBoard(img: GrayImage, board: BoardSpec): Point[] | null {
  const m = new cv.Mat(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.height, img.width, cv.CV_8UC1);
  const size = new cv.Size(board.cols, board.rows);
  let small = m;
  let scale = 1;
  while (small.cols > 800) { small = small.pyrDown(); scale *= 2; }
  const r = small.findChessboardCorners(size, cv.CALIB_CB_ADAPTIVE_THRESH + cv.CALIB_CB_NORMALIZE_IMAGE + cv.CALIB_CB_FAST_CHECK);
  if (!r.returnValue || r.corners.length !== board.cols * board.rows) return null;
  // back to full-resolution coordinates (pixel centres: (p + 0.5)·s − 0.5)
  const coarse = r.corners.map((p) => new cv.Point2((p.x + 0.5) * scale - 0.5, (p.y + 0.5) * scale - 0.5));
  // the refinement window: about a third of the smallest square seen, 3..11 px half-size
  const minSide = minCornerSpacing(coarse, board);
  const half = Math.max(3, Math.min(11, Math.floor(minSide / 3)));
  const refined = m.cornerSubPix(coarse, new cv.Size(half, half), new cv.Size(-1, -1),
    new cv.TermCriteria(cv.termCriteria.EPS + cv.termCriteria.MAX_ITER, 40, 0.001));
  return refined.map((p) => ({ x: p.x, y: p.y }));
}

function minCornerSpacing(c: Point[], b: BoardSpec): number {
  let min = Infinity;
  for (let r = 0; r < b.rows; r++) for (let k = 0; k + 1 < b.cols; k++) {
    const a = c[r * b.cols + k]!; const n = c[r * b.cols + k + 1]!;
    min = Math.min(min, Math.hypot(a.x - n.x, a.y - n.y));
  }
  return min;
}

/** Where and how the board sits in a view. */
export function describeView(c: Point[], b: BoardSpec, size: { width: number; height: number }): ViewDescriptor {
  const tl = c[0]!; const tr = c[b.cols - 1]!; const bl = c[(b.rows - 1) * b.cols]!; const br = c[b.rows * b.cols - 1]!;
  const len = (p: Point, q: Point): number => Math.hypot(p.x - q.x, p.y - q.y);
  const area = Math.abs((tl.x * tr.y - tr.x * tl.y) + (tr.x * br.y - br.x * tr.y) + (br.x * bl.y - bl.x * br.y) + (bl.x * tl.y - tl.x * bl.y)) / 2;
  let sx = 0; let sy = 0;
  for (const p of c) { sx += p.x; sy += p.y; }
  return {
    x: sx / c.length / size.width,
    y: sy / c.length / size.height,
    size: Math.sqrt(area / (size.width * size.height)),
    tilt: Math.max(Math.abs(Math.log(len(tl, tr) / len(bl, br))), Math.abs(Math.log(len(tl, bl) / len(tr, br)))),
  };
}

const distance = (a: ViewDescriptor, b: ViewDescriptor): number =>
  Math.hypot(a.x - b.x, a.y - b.y, a.size - b.size, a.tilt - b.tilt);

/** Views that differ from every view kept before them. */
export function countDistinct(ds: ViewDescriptor[], minDistance: number): number {
  const kept: ViewDescriptor[] = [];
  for (const d of ds) if (kept.every((k) => distance(k, d) > minDistance)) kept.push(d);
  return kept.length;
}

/** Check the views against the rules; throws the coded refusal. */
export function checkDiversity(ds: ViewDescriptor[], rules: LensRules): number {
  const distinct = countDistinct(ds, rules.distinctDistance);
  if (distinct < rules.minDistinctViews) {
    throw new CalibrationTooSimilarError(`only ${distinct} of ${ds.length} views differ in board position, size or tilt `
      + `(need ${rules.minDistinctViews}): move the board over the whole image and tilt it`);
  }
  const spreadX = Math.max(...ds.map((d) => d.x)) - Math.min(...ds.map((d) => d.x));
  const spreadY = Math.max(...ds.map((d) => d.y)) - Math.min(...ds.map((d) => d.y));
  if (spreadX < rules.minSpread || spreadY < rules.minSpread) {
    throw new CalibrationTooSimilarError(`board centres span only ${(spreadX * 100).toFixed(0)} % x ${(spreadY * 100).toFixed(0)} % `
      + `of the image (need ${(rules.minSpread * 100).toFixed(0)} % each way): show the board near the edges and corners too`);
  }
  const tilted = ds.filter((d) => d.tilt > rules.tiltedThreshold).length;
  if (tilted < rules.minTiltedViews) {
    throw new CalibrationTooSimilarError(`only ${tilted} views show the board tilted (need ${rules.minTiltedViews}): `
      + 'a board held square to the camera cannot fix the focal length; tilt it by 20–40°');
  }
  return distinct;
}

/** Calibrate the lens from named gray images of the board. */
export function calibrateLens(images: Array<{ name: string; image: GrayImage }>, board: BoardSpec,
  rulesIn: Partial<LensRules> = {}): LensCalibration {
  const rules = { ...DEFAULT_LENS_RULES, ...rulesIn };
  if (!(board.cols >= 3 && board.rows >= 3 && board.cols !== board.rows)) {
    throw new CalibrationBadInputError(`board ${board.cols}x${board.rows}: use an asymmetric board of at least 3x3 inner corners (e.g. 9x6)`);
  }
  if (!(board.squareMm > 0)) throw new CalibrationBadInputError(`square size ${board.squareMm} mm must be positive`);
  if (images.length < rules.minViews) {
    throw new CalibrationTooFewImagesError(`${images.length} images given, need at least ${rules.minViews} views of the board`);
  }
  const { width, height } = images[0]!.image;
  const odd = images.find((i) => i.image.width !== width || i.image.height !== height);
  if (odd) throw new CalibrationBadInputError(`${odd.name} is ${odd.image.width}x${odd.image.height}, the first image is ${width}x${height}`);

  const views: ViewResult[] = images.map(({ name, image }) => {
    const corners = detectBoard(image, board);
    return { name, found: corners !== null, corners, descriptor: corners ? describeView(corners, board, { width, height }) : null, rms: null };
  });
  const used = views.filter((v) => v.found);
  if (used.length === 0) {
    throw new CalibrationNoBoardError(`none of the ${images.length} images shows a ${board.cols}x${board.rows} board `
      + '(count the INNER corners; the whole board must be in view with a white border around it)');
  }
  if (used.length < rules.minViews) {
    throw new CalibrationTooFewImagesError(`the board was found in ${used.length} of ${images.length} images `
      + `(not in: ${views.filter((v) => !v.found).map((v) => v.name).slice(0, 8).join(', ')}), need ${rules.minViews}`);
  }
  const distinct = checkDiversity(used.map((v) => v.descriptor!), rules);

  const obj = boardObjectPoints(board).map((p) => new cv.Point3(p.x, p.y, p.z));
  const objectPoints = used.map(() => obj);
  const imagePoints = used.map((v) => v.corners!.map((p) => new cv.Point2(p.x, p.y)));
  const f0 = Math.max(width, height);
  const K0 = new cv.Mat([[f0, 0, width / 2], [0, f0, height / 2], [0, 0, 1]], cv.CV_64F);
  const r = cv.calibrateCameraExtended(objectPoints, imagePoints, new cv.Size(width, height), K0, [0, 0, 0, 0, 0], 0,
    new cv.TermCriteria(cv.termCriteria.COUNT + cv.termCriteria.EPS, 100, 1e-12));
  const K = K0.getDataAsArray() as number[][];
  const d = r.distCoeffs;
  const camera: CameraModel = {
    fx: K[0]![0]!, fy: K[1]![1]!, cx: K[0]![2]!, cy: K[1]![2]!,
    dist: [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0, d[3] ?? 0, d[4] ?? 0],
  };
  used.forEach((v, i) => { v.rms = r.perViewErrors[i] ?? null; });
  if (!Number.isFinite(r.returnValue) || r.returnValue > rules.maxRms) {
    throw new CalibrationPoorFitError(`RMS reprojection error ${r.returnValue.toFixed(3)} px is above ${rules.maxRms} px: `
      + 'check the board is flat, the square size, and drop blurred images');
  }
  return { camera, imageSize: { width, height }, board, rms: r.returnValue, views, used: used.length, distinct };
}
