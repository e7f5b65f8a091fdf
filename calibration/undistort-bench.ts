/**
 * The benchmark's `undistort` stage: the precomputed lens table applied to a
 * binned 1280x1024 → 320x256 frame, as the inference worker does per frame
 * (in WebAssembly where the runtime has it, as the worker does).
 * Uses the station's lens calibration when there is one, else a typical
 * machine-vision lens (k1 = −0.12), which costs the same: the table's size,
 * not the coefficients, sets the work.
 */
import { CalibrationStore } from './calibration-file.js';
import type { CameraModel } from './camera-model.js';
import { benchRemap, buildUndistortLut } from './undistort-map.js';
import { createWasmRemap } from './undistort-remap-wasm.js';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function benchUndistortStage(dir: string, frame: { width: number; height: number }, runs: number):
  { p50: number; p99: number; max: number; runs: number; lut: string; lens: string; buildMs: number } {
  let camera: CameraModel | null = null;
  try { camera = new CalibrationStore(dir).current()?.lens?.camera ?? null; } catch { camera = null; }
  const lens = camera ? `station lens (${dir})` : 'typical lens k1=-0.12';
  camera ??= { fx: frame.width * 1.17, fy: frame.width * 1.17, cx: frame.width / 2, cy: frame.height / 2, dist: [-0.12, 0.08, 0.001, -0.0015, -0.02] };
  const t = performance.now();
  const lut = buildUndistortLut(camera, frame, 4);
  const buildMs = performance.now() - t;
  // what the inference worker applies: the WebAssembly remap where it runs, else remapF32
  const wasm = createWasmRemap(lut);
  const s = benchRemap(lut, runs, wasm ? (src, out) => wasm.remapF32(src, out) : undefined).sort((a, b) => a - b);
  return { p50: pct(s, 0.5), p99: pct(s, 0.99), max: s[s.length - 1]!, runs, lut: `${lut.width}x${lut.height} bilinear, ${wasm ? 'wasm' : 'js'}`, lens, buildMs };
}
