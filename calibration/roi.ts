/**
 * The region of interest: an axis-aligned rectangle in full-frame pixels,
 * drawn by the installer on a live frame (UI) or given on the command line.
 * The focus/exposure checks run inside it; it is stored in the calibration file.
 */
import type { GrayImage } from '../inspector/core/gray-image.js';
import { CalibrationBadInputError } from './errors.js';

export interface Roi {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Parse "x,y,w,h". */
export function parseRect(text: string): Roi {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 4 || parts.some((v) => !Number.isInteger(v))) {
    throw new CalibrationBadInputError(`ROI "${text}": expected four integers x,y,w,h`);
  }
  const [x, y, width, height] = parts as [number, number, number, number];
  return { x, y, width, height };
}

/** Throws unless the ROI is a non-trivial rectangle inside the frame. */
export function validateRoi(roi: Roi, frame: { width: number; height: number }, minSide = 16): Roi {
  const { x, y, width, height } = roi;
  if (![x, y, width, height].every(Number.isInteger)) throw new CalibrationBadInputError('ROI values must be integers');
  if (width < minSide || height < minSide) throw new CalibrationBadInputError(`ROI ${width}x${height} is smaller than ${minSide}x${minSide} px`);
  if (x < 0 || y < 0 || x + width > frame.width || y + height > frame.height) {
    throw new CalibrationBadInputError(`ROI ${x},${y},${width},${height} leaves the ${frame.width}x${frame.height} frame`);
  }
  return roi;
}

/** The ROI in an image binned by (fx, fy), rounded outwards. */
export function roiToBinned(roi: Roi, fx: number, fy = fx): Roi {
  const x = Math.floor(roi.x / fx);
  const y = Math.floor(roi.y / fy);
  return { x, y, width: Math.ceil((roi.x + roi.width) / fx) - x, height: Math.ceil((roi.y + roi.height) / fy) - y };
}

/** Copy the ROI out of an image. */
export function cropGray(img: GrayImage, roi: Roi): GrayImage {
  validateRoi(roi, img, 1);
  const out = new Uint8Array(roi.width * roi.height);
  for (let r = 0; r < roi.height; r++) {
    const s = (roi.y + r) * img.width + roi.x;
    out.set(img.data.subarray(s, s + roi.width), r * roi.width);
  }
  return { width: roi.width, height: roi.height, data: out };
}
