/**
 * Registration in the inference worker's hot path, for packages whose manifest
 * has `registration`: the frame is resized to the model input as uint8 (the JS
 * area-binning fast path where it applies, else OpenCV resize), registered to
 * the package's reference (calibration/registration.ts), warped into the
 * reference frame and normalised into the model's input tensor.
 *
 * All buffers are allocated once. The OpenCV calls are synchronous: this runs
 * in the inference worker, never on the station's main thread.
 */
import { join } from 'node:path';
import { cv } from '../core/opencv.js';
import { readGray, type GrayImage } from '../core/gray-image.js';
import { createRegistrar, type Registrar } from '../../calibration/registration.js';
import { binArea4, type BinningPlan } from '../inference/area-binning.js';
import type { Manifest } from '../inference/manifest-schema.js';

/** What a frame's registration reports with its inference result. */
export interface RegistrationFigures {
  ok: boolean;
  dx: number;
  dy: number;
  angleDeg: number;
  quality: number;
  /** time of resize + registration + warp + normalisation, ms */
  ms: number;
  reason?: string;
}

export interface FrameRegistration {
  /** the last frame's figures (one object, overwritten per frame) */
  readonly last: RegistrationFigures;
  /** Resize, register, warp and normalise `frame` into `input`; returns `last`. */
  prepare(frame: Uint8Array, input: Float32Array): RegistrationFigures;
}

export async function createFrameRegistration(packageDir: string, manifest: Manifest,
  frame: { width: number; height: number }, plan: { mul: number; add: number },
  binning: BinningPlan | null): Promise<FrameRegistration> {
  const reg = manifest.registration!;
  const [, , H, W] = manifest.input.shape;
  const reference: GrayImage = await readGray(join(packageDir, reg.reference));
  if (reference.width !== W || reference.height !== H) {
    throw new RangeError(`registration reference is ${reference.width}x${reference.height}, the model input ${W}x${H}`);
  }
  const registrar: Registrar = createRegistrar(reference, reg);
  const small: GrayImage = { width: W, height: H, data: new Uint8Array(W * H) };
  const warped = new Uint8Array(W * H);
  const binnedF = new Float32Array(W * H);
  const acc = new Uint32Array(frame.width >>> 2);
  const interp = manifest.input.resize === 'area' ? cv.INTER_AREA : cv.INTER_LINEAR;
  const last: RegistrationFigures = { ok: false, dx: 0, dy: 0, angleDeg: 0, quality: 0, ms: 0 };
  const { mul, add } = plan;

  const resize = (src: Uint8Array): void => {
    if (frame.width === W && frame.height === H) { small.data.set(src); return; }
    if (binning) {
      // the fast path's binning with unit normalisation gives the box mean; round back to uint8
      binArea4(src, { ...binning, mul: 1, add: 0 }, binnedF, acc);
      for (let i = 0; i < binnedF.length; i++) small.data[i] = Math.round(binnedF[i]!);
      return;
    }
    const m = new cv.Mat(Buffer.from(src.buffer, src.byteOffset, src.byteLength), frame.height, frame.width, cv.CV_8UC1)
      .resize(H, W, 0, 0, interp);
    small.data.set(m.getData());
  };

  return {
    last,
    prepare(src, input) {
      const t0 = performance.now();
      resize(src);
      const r = registrar.register(small);
      last.ok = r.ok; last.dx = r.dx; last.dy = r.dy; last.angleDeg = r.angleDeg; last.quality = r.quality;
      if (r.reason !== undefined) last.reason = r.reason; else delete last.reason;
      if (r.ok) {
        registrar.warp(small, r, warped);
        for (let i = 0; i < warped.length; i++) input[i] = warped[i]! * mul + add;
      }
      last.ms = performance.now() - t0;
      return last;
    },
  };
}
