/**
 * The conveyor plane and its scale: a homography from image pixels to
 * millimetres on the plane, found from a checkerboard lying on the belt or
 * from four (or more) marked points with known positions, and the millimetres
 * per pixel that follow from it.
 *
 * When the lens is calibrated the image points are first undistorted, so the
 * homography maps IDEAL pixels (the undistorted frame the model sees, with the
 * same camera matrix) to the plane; without a lens calibration it maps raw
 * frame pixels. Lengths and areas are converted with the homography's local
 * Jacobian at the point of interest (a tilted camera has a scale that varies
 * over the image).
 */
import { cv } from '../inspector/core/opencv.js';
import type { GrayImage } from '../inspector/core/gray-image.js';
import { type CameraModel, applyHomography, invert3, localScale, undistortPixel } from './camera-model.js';
import { detectBoard, type Point } from './lens-calibration.js';
import { boardObjectPoints, type BoardSpec } from './synthetic-board.js';
import { CalibrationBadInputError, CalibrationNoBoardError } from './errors.js';

export interface PlaneCalibration {
  /** 3x3 row-major: (ideal or raw) image pixel → plane mm */
  homography: number[];
  /** whether image points were undistorted with the lens calibration first */
  undistorted: boolean;
  source: 'board' | 'points';
  /** mm per pixel at the image centre: geometric mean of x and y */
  mmPerPx: number;
  mmPerPxX: number;
  mmPerPxY: number;
  /** RMS distance (mm) between the reference points and their mapped image points */
  residualMm: number;
  /** the image points used (in the pixel space of `homography`) and their plane positions */
  imagePoints: Point[];
  planePoints: Point[];
}

/** Fit the plane from corresponding image points (px) and plane points (mm). */
export function planeFromPoints(image: Point[], plane: Point[], imageSize: { width: number; height: number },
  lens: CameraModel | null = null, source: 'board' | 'points' = 'points'): PlaneCalibration {
  if (image.length < 4 || image.length !== plane.length) {
    throw new CalibrationBadInputError(`need at least 4 image points with as many plane points (got ${image.length} and ${plane.length})`);
  }
  if ([...image, ...plane].some((p) => !Number.isFinite(p.x) || !Number.isFinite(p.y))) throw new CalibrationBadInputError('points must be finite numbers');
  const ideal = lens ? image.map((p) => undistortPixel(lens, p.x, p.y)) : image.map((p) => ({ x: p.x, y: p.y }));
  if (collinearish(ideal) || collinearish(plane)) throw new CalibrationBadInputError('the points are (nearly) on one line: mark the corners of a rectangle');
  const r = cv.findHomography(ideal.map((p) => new cv.Point2(p.x, p.y)), plane.map((p) => new cv.Point2(p.x, p.y)));
  const H = (r.homography.getDataAsArray() as number[][]).flat();
  if (H.length !== 9 || H.some((v) => !Number.isFinite(v))) throw new CalibrationBadInputError('no homography fits these points');
  const norm = H[8]!;
  const h = H.map((v) => v / norm);
  let sq = 0;
  ideal.forEach((p, i) => { const m = applyHomography(h, p.x, p.y); sq += (m.x - plane[i]!.x) ** 2 + (m.y - plane[i]!.y) ** 2; });
  const s = localScale(h, imageSize.width / 2, imageSize.height / 2);
  return {
    homography: h, undistorted: lens !== null, source, mmPerPx: Math.sqrt(s.area), mmPerPxX: s.x, mmPerPxY: s.y,
    residualMm: Math.sqrt(sq / ideal.length), imagePoints: ideal, planePoints: plane.map((p) => ({ x: p.x, y: p.y })),
  };
}

function collinearish(p: Point[]): boolean {
  // twice the area of the largest triangle vs the squared extent
  let best = 0; let ext = 0;
  for (let i = 0; i < p.length; i++) for (let j = i + 1; j < p.length; j++) {
    ext = Math.max(ext, (p[i]!.x - p[j]!.x) ** 2 + (p[i]!.y - p[j]!.y) ** 2);
    for (let k = j + 1; k < p.length; k++) {
      best = Math.max(best, Math.abs((p[j]!.x - p[i]!.x) * (p[k]!.y - p[i]!.y) - (p[k]!.x - p[i]!.x) * (p[j]!.y - p[i]!.y)));
    }
  }
  return ext === 0 || best / ext < 0.01;
}

/** Fit the plane from a checkerboard lying on it (its first inner corner is the origin). */
export function planeFromBoard(img: GrayImage, board: BoardSpec, lens: CameraModel | null = null): PlaneCalibration {
  const corners = detectBoard(img, board);
  if (!corners) throw new CalibrationNoBoardError(`no ${board.cols}x${board.rows} board in the plane image`);
  const obj = boardObjectPoints(board).map((p) => ({ x: p.x, y: p.y }));
  return planeFromPoints(corners, obj, img, lens, 'board');
}

/** Pixel length → mm at an image point (default: the centre scale). */
export function lengthPxToMm(p: PlaneCalibration, px: number, at?: Point): number {
  if (!at) return px * p.mmPerPx;
  const s = localScale(p.homography, at.x, at.y);
  return px * Math.sqrt(s.area);
}

/** Pixel area → mm² at an image point (default: the centre scale). */
export function areaPxToMm2(p: PlaneCalibration, areaPx: number, at?: Point): number {
  if (!at) return areaPx * p.mmPerPx * p.mmPerPx;
  return areaPx * localScale(p.homography, at.x, at.y).area;
}

/** A defect region (frame pixels) in millimetres, scaled at its centre. */
export function regionToMm(p: PlaneCalibration, r: { x: number; y: number; w: number; h: number; areaPx: number }):
  { widthMm: number; heightMm: number; areaMm2: number } {
  const s = localScale(p.homography, r.x + r.w / 2, r.y + r.h / 2);
  return { widthMm: r.w * s.x, heightMm: r.h * s.y, areaMm2: r.areaPx * s.area };
}

/**
 * The top-down view: a homography image px → top-down px at `mmPerPx`, sized
 * to hold the image's footprint on the plane (or `roi`'s).
 */
export function topDownHomography(p: PlaneCalibration, region: { x: number; y: number; width: number; height: number }, mmPerPx = p.mmPerPx):
  { homography: number[]; width: number; height: number } {
  const corners = [[region.x, region.y], [region.x + region.width, region.y], [region.x, region.y + region.height],
    [region.x + region.width, region.y + region.height]].map(([u, v]) => applyHomography(p.homography, u!, v!));
  const minX = Math.min(...corners.map((c) => c.x)); const minY = Math.min(...corners.map((c) => c.y));
  const maxX = Math.max(...corners.map((c) => c.x)); const maxY = Math.max(...corners.map((c) => c.y));
  const k = 1 / mmPerPx;
  const S = [k, 0, -minX * k, 0, k, -minY * k, 0, 0, 1];
  const h = p.homography;
  const T = new Array<number>(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let i = 0; i < 3; i++) T[r * 3 + c]! += S[r * 3 + i]! * h[i * 3 + c]!;
  return { homography: T, width: Math.ceil((maxX - minX) * k), height: Math.ceil((maxY - minY) * k) };
}

/** Warp an (already undistorted when `p.undistorted`) image to the top-down view. */
export function warpTopDown(img: GrayImage, p: PlaneCalibration, maxSide = 2048): GrayImage {
  let td = topDownHomography(p, { x: 0, y: 0, width: img.width, height: img.height });
  if (Math.max(td.width, td.height) > maxSide) td = topDownHomography(p, { x: 0, y: 0, width: img.width, height: img.height },
    p.mmPerPx * Math.max(td.width, td.height) / maxSide);
  const src = new cv.Mat(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.height, img.width, cv.CV_8UC1);
  const M = new cv.Mat([td.homography.slice(0, 3), td.homography.slice(3, 6), td.homography.slice(6, 9)], cv.CV_64F);
  const out = src.warpPerspective(M, new cv.Size(td.width, td.height), cv.INTER_LINEAR);
  return { width: td.width, height: td.height, data: new Uint8Array(out.getData()) };
}

/** Plane mm → image pixel (the inverse homography), e.g. to draw a scale bar. */
export function planeToImage(p: PlaneCalibration, mm: Point): Point {
  return applyHomography(invert3(p.homography), mm.x, mm.y);
}
