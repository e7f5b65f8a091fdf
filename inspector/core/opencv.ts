/**
 * The one way to load OpenCV (@u4/opencv4nodejs, built against Debian's
 * OpenCV 4.6). The binding is a CommonJS native addon and prints info lines
 * on load unless its build logger is silenced first; this module does both.
 *
 *   import { cv } from '../core/opencv.js';
 *   const m = new cv.Mat(buf, rows, cols, cv.CV_8UC1);
 *
 * Keep OpenCV calls out of the station's main thread: they are synchronous
 * native calls. Use them in workers, CLIs and tests.
 */
import { createRequire } from 'node:module';
import type * as OpenCV from '@u4/opencv4nodejs';

const require = createRequire(import.meta.url);
(require('@u4/opencv-build') as { Log: { silence: boolean } }).Log.silence = true;

export const cv = require('@u4/opencv4nodejs') as typeof OpenCV;
export type Mat = OpenCV.Mat;
