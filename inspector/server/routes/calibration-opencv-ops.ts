/**
 * The calibration routes' OpenCV work (lens fit, board detection, plane fits), as plain
 * functions of structured-clonable arguments. They run in the calibration OpenCV worker
 * (calibration-opencv-worker.ts) — or inline in a thread that has loaded the binding
 * already (calibration-opencv.ts decides). `started()` is called once the inputs are read
 * and the synchronous OpenCV part begins.
 * Never import this module (it loads OpenCV) outside those two places.
 */
import { join } from 'node:path';
import { readGray, type GrayImage } from '../../core/gray-image.js';
import { calibrateLens, detectBoard, type Point } from '../../../calibration/lens-calibration.js';
import { planeFromBoard, planeFromPoints, type PlaneCalibration } from '../../../calibration/plane.js';
import type { BoardSpec } from '../../../calibration/synthetic-board.js';
import type { CameraModel } from '../../../calibration/camera-model.js';
import { CalibrationBadInputError } from '../../../calibration/errors.js';

const read = (path: string): Promise<GrayImage> => readGray(path).catch((err: Error) => { throw new CalibrationBadInputError(`${path}: ${err.message}`); });

export interface LensResult {
  camera: CameraModel; imageSize: { width: number; height: number }; rms: number; used: number; distinct: number;
  views: Array<{ name: string; found: boolean; rms: number | null; corners: Point[] | null }>;
}

export const openCvOps = {
  /** lens fit from the named images of a folder */
  async lens(a: { imagesDir: string; files: string[]; board: BoardSpec; minViews?: number }, started: () => void): Promise<LensResult> {
    const images = await Promise.all(a.files.map(async (f) => ({ name: f, image: await read(join(a.imagesDir, f)) })));
    started();
    const r = calibrateLens(images, a.board, a.minViews ? { minViews: a.minViews } : {});
    return { camera: r.camera, imageSize: r.imageSize, rms: r.rms, used: r.used, distinct: r.distinct,
      views: r.views.map((v) => ({ name: v.name, found: v.found, rms: v.rms, corners: v.corners })) };
  },
  /** the board's inner corners in an image, or null */
  async detect(a: { image: GrayImage; board: BoardSpec }, started: () => void): Promise<Point[] | null> {
    started();
    return detectBoard(a.image, a.board);
  },
  async planeFromPoints(a: { points: Point[]; mm: Point[]; size: { width: number; height: number }; lens: CameraModel | null },
    started: () => void): Promise<PlaneCalibration> {
    started();
    return planeFromPoints(a.points, a.mm, a.size, a.lens);
  },
  async planeFromBoard(a: { imagePath: string; board: BoardSpec; lens: CameraModel | null }, started: () => void): Promise<PlaneCalibration> {
    const img = await read(a.imagePath);
    started();
    return planeFromBoard(img, a.board, a.lens);
  },
};

export type OpenCvOps = typeof openCvOps;
export type OpenCvOp = keyof OpenCvOps;
