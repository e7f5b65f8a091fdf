/**
 * Registration in the inference worker's hot path, for packages whose manifest
 * has `registration`: the frame is resized to the model input as uint8 (the JS
 * area-binning fast path where it applies, else a JS box/bilinear resize),
 * undistorted through the station's lens table when it has one (binning path),
 * registered to the package's reference (calibration/registration.ts), warped
 * into the reference frame and normalised into the model's input tensor.
 *
 * Plain JS, no OpenCV (the binding may be loaded by one thread per process
 * only, and stations run several inference workers: live, shadow, swaps).
 * All buffers are allocated once; prepare() allocates nothing.
 */
import { join } from 'node:path';
import { readGray, type GrayImage } from '../core/gray-image.js';
import { createRegistrar, type Registrar, type RegistrationResult } from '../../calibration/registration.js';
import type { BinningPlan } from '../inference/area-binning.js';
import { createFrameBinner } from '../inference/area-binning-wasm.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { remapU8, type UndistortLut } from '../../calibration/undistort-map.js';
import { createWasmRemap } from '../../calibration/undistort-remap-wasm.js';

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

/**
 * Resize a gray frame into `out` (outW×outH) without allocating: `area` with
 * integer factors is the exact box mean (what OpenCV INTER_AREA gives), other
 * factors and `bilinear` sample bilinearly at pixel centres (INTER_LINEAR's
 * geometry); rounded to nearest.
 */
export function resizeGray(src: Uint8Array, sw: number, sh: number, out: Uint8Array, ow: number, oh: number, area: boolean): void {
  const fx = sw / ow;
  const fy = sh / oh;
  if (area && Number.isInteger(fx) && Number.isInteger(fy)) {
    const inv = 1 / (fx * fy);
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let s = 0;
        for (let j = 0; j < fy; j++) {
          for (let i = (y * fy + j) * sw + x * fx, e = i + fx; i < e; i++) s += src[i]!;
        }
        out[y * ow + x] = s * inv + 0.5;
      }
    }
    return;
  }
  for (let y = 0; y < oh; y++) {
    const syf = Math.min(sh - 1, Math.max(0, (y + 0.5) * fy - 0.5));
    const y0 = Math.min(sh - 2, syf | 0);
    const wy = sh > 1 ? syf - y0 : 0;
    for (let x = 0; x < ow; x++) {
      const sxf = Math.min(sw - 1, Math.max(0, (x + 0.5) * fx - 0.5));
      const x0 = Math.min(sw - 2, sxf | 0);
      const wx = sw > 1 ? sxf - x0 : 0;
      const i = Math.max(0, y0) * sw + Math.max(0, x0);
      const a = src[i]!;
      const b = src[i + (sw > 1 ? 1 : 0)]!;
      const c = src[i + (sh > 1 ? sw : 0)]!;
      const d = src[i + (sh > 1 ? sw : 0) + (sw > 1 ? 1 : 0)]!;
      const top = a + (b - a) * wx;
      out[y * ow + x] = top + (c + (d - c) * wx - top) * wy + 0.5;
    }
  }
}

export async function createFrameRegistration(packageDir: string, manifest: Manifest,
  frame: { width: number; height: number }, plan: { mul: number; add: number },
  binning: BinningPlan | null, undistort: UndistortLut | null = null): Promise<FrameRegistration> {
  const reg = manifest.registration!;
  const [, , H, W] = manifest.input.shape;
  const reference: GrayImage = await readGray(join(packageDir, reg.reference));
  if (reference.width !== W || reference.height !== H) {
    throw new RangeError(`registration reference is ${reference.width}x${reference.height}, the model input ${W}x${H}`);
  }
  const registrar: Registrar = createRegistrar(reference, reg);
  const small: GrayImage = { width: W, height: H, data: new Uint8Array(W * H) };
  const warped = new Uint8Array(W * H);
  const smallData = small.data;
  // lens calibration: binned bytes go through the undistortion table (model-input size) before registration
  if (undistort && (!binning || undistort.width !== W || undistort.height !== H)) {
    throw new RangeError(`undistortion table ${undistort.width}x${undistort.height} needs the binning path at ${W}x${H}`);
  }
  const distorted = new Uint8Array(undistort ? W * H : 0);
  const undistortWasm = undistort ? createWasmRemap(undistort) : null;
  const binner = binning ? createFrameBinner(frame.width, frame.height, binning.factorY) : null;
  const area = manifest.input.resize === 'area';
  const registered: RegistrationResult = { ok: false, dx: 0, dy: 0, angleDeg: 0, quality: 0 };
  const last: RegistrationFigures = { ok: false, dx: 0, dy: 0, angleDeg: 0, quality: 0, ms: 0 };
  const { mul, add } = plan;

  const resize = (src: Uint8Array): void => {
    if (frame.width === W && frame.height === H) { small.data.set(src); return; }
    if (binning) {
      // the fast path's binning, rounded to bytes in the same pass (resizeGray's area result)
      if (undistort) {
        binner!.binU8(src, binning, distorted);
        if (undistortWasm) undistortWasm.remapU8(distorted, smallData); else remapU8(distorted, undistort, smallData);
        return;
      }
      binner!.binU8(src, binning, smallData);
      return;
    }
    resizeGray(src, frame.width, frame.height, small.data, W, H, area);
  };

  return {
    last,
    prepare(src, input) {
      const t0 = performance.now();
      resize(src);
      const r = registrar.registerInto(small, registered);
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
