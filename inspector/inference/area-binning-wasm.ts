/**
 * The station's 4 x fy area binning (area-binning.ts) in WebAssembly with
 * 128-bit SIMD: 16 pixels per load, two pairwise widening adds give four
 * 4-pixel sums at once. Same numbers as the JS functions (float: the same sum
 * times the same k plus add, in f64, rounded to f32 once; bytes: the same integer rounding), tested
 * bit for bit in test/preprocess-paths.test.ts.
 *
 * The module (source: wasm/area-binning.wat, compiled by scripts/build-wasm.ts
 * with wabt) is 547 bytes, embedded below, and instantiated synchronously per
 * worker with its own memory: the frame is copied in (a memcpy of 1.3 MB) and the
 * result copied out. createWasmBinner() returns null where WebAssembly SIMD is
 * missing or the frame does not fit the kernel (width a multiple of 16): callers
 * keep the JS path then.
 */
import { binArea4, binArea4U8, type BinningPlan } from './area-binning.js';

/** wasm/area-binning.wat compiled (scripts/build-wasm.ts prints this line). */
export const AREA_BINNING_WASM = 'AGFzbQEAAAABFAJgB39/f39/fHwAYAZ/f39/f38AAwMCAAEFAwEAAQcdAwZtZW1vcnkCAAdiaW40ZjMyAAAGYmluNHU4AAEK2QMCgAICBn8FeyAF/RQhDiAG/RQhDyACIANuIQcCQANAIAggB08NASAAIAggA2wgAWxqIQtBACEJAkADQCAJIAFPDQH9DAAAAAAAAAAAAAAAAAAAAAAhDSALIAlqIQxBACEKAkADQCAKIANPDQEgDSAM/QAEAP19/X/9rgEhDSAMIAFqIQwgCkEBaiEKDAALCyAN/f8BIA798gEgD/3wASEQIA0gDf0NCAkKCwwNDg8ICQoLDA0OD/3/ASAO/fIBIA/98AEhESAEIBD9XiAR/V79DQABAgMEBQYHEBESExQVFhf9CwQAIARBEGohBCAJQRBqIQkMAAsLIAhBAWohCAwACwsL1AECBn8DeyADQQRs/REhDSACIANuIQYCQANAIAcgBk8NASAAIAcgA2wgAWxqIQpBACEIAkADQCAIIAFPDQH9DAAAAAAAAAAAAAAAAAAAAAAhDCAKIAhqIQtBACEJAkADQCAJIANPDQEgDCAL/QAEAP19/X/9rgEhDCALIAFqIQsgCUEBaiEJDAALCyAMIAz9rgEgDf2uASAF/a0BIQwgDCAM/YYBIQ4gDiAO/WYhDiAEIA79WgIAACAEQQRqIQQgCEEQaiEIDAALCyAHQQFqIQcMAAsLCw==';

// the project's lib has no DOM types, and @types/node declares only part of WebAssembly
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
const WA = (globalThis as unknown as { WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
} }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  bin4f32(src: number, w: number, h: number, fy: number, out: number, k: number, add: number): void;
  bin4u8(src: number, w: number, h: number, fy: number, out: number, shift: number): void;
}

export interface WasmBinner {
  /** binArea4 into floats (normalised with the plan's mul/add) */
  binF32(src: Uint8Array, p: BinningPlan, out: Float32Array): void;
  /** binArea4U8: the block mean rounded to bytes (power-of-two block sizes; others throw) */
  binU8(src: Uint8Array, p: Pick<BinningPlan, 'width' | 'height' | 'factorY'>, out: Uint8Array): void;
}

const PAGE = 65536;

/** A binner for frames of width x height (GRAY8), or null where it cannot run. */
export function createWasmBinner(width: number, height: number, factorY: number): WasmBinner | null {
  if (width % 16 !== 0 || factorY < 1 || height % factorY !== 0 || factorY > 128) return null;
  let ex: Exports;
  try {
    const mod = new WA.Module(Buffer.from(AREA_BINNING_WASM, 'base64'));
    ex = new WA.Instance(mod, {}).exports as Exports;
  } catch {
    return null; // no SIMD in this runtime
  }
  const frameBytes = width * height;
  const outN = (width / 4) * (height / factorY);
  const outOff = Math.ceil(frameBytes / 16) * 16;
  const need = outOff + outN * 4;
  const have = ex.memory.buffer.byteLength;
  if (need > have) ex.memory.grow(Math.ceil((need - have) / PAGE));
  const mem = ex.memory.buffer;
  const src = new Uint8Array(mem, 0, frameBytes);
  const outF = new Float32Array(mem, outOff, outN);
  const outB = new Uint8Array(mem, outOff, outN);
  const n = 4 * factorY;
  const shift = Math.log2(2 * n);
  const check = (s: Uint8Array, w: number, h: number, fy: number, outLen: number): void => {
    if (w !== width || h !== height || fy !== factorY || s.length < frameBytes || outLen < outN) {
      throw new RangeError(`wasm binner is for ${width}x${height} / 4x${factorY}, got ${w}x${h} / 4x${fy}`);
    }
  };
  return {
    binF32(s, p, out) {
      check(s, p.width, p.height, p.factorY, out.length);
      src.set(s.length === frameBytes ? s : s.subarray(0, frameBytes));
      ex.bin4f32(0, width, height, factorY, outOff, p.mul / n, p.add);
      out.set(outF);
    },
    binU8(s, p, out) {
      check(s, p.width, p.height, p.factorY, out.length);
      if (!Number.isInteger(shift)) throw new RangeError(`byte binning in wasm needs a power-of-two block, 4x${factorY} is not`);
      src.set(s.length === frameBytes ? s : s.subarray(0, frameBytes));
      ex.bin4u8(0, width, height, factorY, outOff, shift);
      out.set(outB);
    },
  };
}

/** The WebAssembly binner where it runs, else the JS functions: same results either way. */
export function createFrameBinner(width: number, height: number, factorY: number): WasmBinner & { readonly kind: 'wasm-simd' | 'js' } {
  const wasm = createWasmBinner(width, height, factorY);
  const acc = new Uint32Array(width >>> 2);
  const jsU8: WasmBinner['binU8'] = (s, p, out) => binArea4U8(s, p, out, acc);
  // the byte kernel rounds by a shift: other block sizes (e.g. 4x3) take the JS loop for bytes
  const pow2 = Number.isInteger(Math.log2(8 * factorY));
  if (wasm) return { kind: 'wasm-simd', binF32: wasm.binF32, binU8: pow2 ? wasm.binU8 : jsU8 };
  return { kind: 'js', binF32: (s, p, out) => binArea4(s, p, out, acc), binU8: jsU8 };
}
