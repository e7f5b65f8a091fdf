/**
 * The one way to load OpenCV (@u4/opencv4nodejs, built against Debian's
 * OpenCV 4.6). The binding is a CommonJS native addon and prints info lines
 * on load unless its build logger is silenced first; this module does both.
 *
 *   import { cv } from '../core/opencv.js';
 *   const m = new cv.Mat(buf, rows, cols, cv.CV_8UC1);
 *
 * Keep OpenCV calls out of the station's main thread: they are synchronous
 * native calls. Use them in CLIs, offline tools and tests.
 *
 * ONE THREAD PER PROCESS: the binding is not context-aware. Once one thread
 * has loaded it, loading it in any other thread of the same process (a second
 * worker, even after the first one ended; or the main thread after a worker)
 * aborts the whole process (V8 "Check failed: node->IsInUse()" in DLOpen).
 * So never import this module from code that runs in the station's worker
 * threads (inference, shadow, server, store): a live model swap or a shadow
 * runner would start a second one. Registration, resizing and warps on the
 * station path are plain JS (calibration/registration.ts and friends); OpenCV
 * stays in offline code run on one main thread (teaching's Sobel/dilate and
 * resize, lens calibration, tests).
 */
import { createRequire } from 'node:module';
import type * as OpenCV from '@u4/opencv4nodejs';

const require = createRequire(import.meta.url);
(require('@u4/opencv-build') as { Log: { silence: boolean } }).Log.silence = true;

export const cv = require('@u4/opencv4nodejs') as typeof OpenCV;
export type Mat = OpenCV.Mat;
