/**
 * The lens table (undistort-map.ts) applied in WebAssembly: the same f64
 * arithmetic as remapF32, so the same f32 results bit for bit
 * (test/preprocess-paths.test.ts), about twice as fast as the JS loop.
 *
 * The module (source: inspector/inference/wasm/undistort-remap.wat, compiled by
 * scripts/build-wasm.ts with wabt) is embedded below and instantiated per
 * table with its own memory, holding the table, the input and the output: per
 * frame the binned image is copied in and the result copied out (floats or bytes).
 * createWasmRemap() returns null where WebAssembly is missing: callers keep
 * remapF32 then.
 */
import type { UndistortLut } from './undistort-map.js';

/** inspector/inference/wasm/undistort-remap.wat compiled (scripts/build-wasm.ts prints this line). */
export const UNDISTORT_REMAP_WASM = 'AGFzbQEAAAABCgFgBn9/f39/fwADAwIAAAUDAQABBx8DBm1lbW9yeQIACHJlbWFwZjMyAAAHcmVtYXB1OAABCpMDAsUBAwN/CHwBfyAFQQJ0IRECQANAIAYgBE8NASAAIAEoAgBBAnRqIQcgAigCACEIIAhB//8DcbhEAAAAAAAAAD+iIQkgCEEQdrhEAAAAAAAAAD+iIQogByoCALshCyAHKgIEuyEMIAcgEWoqAgC7IQ0gByARaioCBLshDiALIAwgC6EgCaKgIQ8gDSAOIA2hIAmioCEQIAMgDyAQIA+hIAqioLY4AgAgAUEEaiEBIAJBBGohAiADQQRqIQMgBkEBaiEGDAALCwvJAQMDfwh8AX8gBSERAkADQCAGIARPDQEgACABKAIAaiEHIAIoAgAhCCAIQf//A3G4RAAAAAAAAAA/oiEJIAhBEHa4RAAAAAAAAAA/oiEKIActAAC4IQsgBy0AAbghDCAHIBFqLQAAuCENIAcgEWotAAG4IQ4gCyAMIAuhIAmioCEPIA0gDiANoSAJoqAhECADIA8gECAPoSAKoqBEAAAAAAAA4D+gqjoAACABQQRqIQEgAkEEaiECIANBAWohAyAGQQFqIQYMAAsLCw==';

interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
const WA = (globalThis as unknown as { WebAssembly?: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
} }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  remapf32(src: number, index: number, weights: number, out: number, n: number, width: number): void;
  remapu8(src: number, index: number, weights: number, out: number, n: number, width: number): void;
}

export interface WasmRemap {
  /** remapF32(src, lut, out) for this table */
  remapF32(src: Float32Array, out: Float32Array): void;
  /** remapU8(src, lut, out) for this table */
  remapU8(src: Uint8Array, out: Uint8Array): void;
}

export function createWasmRemap(lut: UndistortLut): WasmRemap | null {
  if (!WA) return null;
  let ex: Exports;
  try {
    ex = new WA.Instance(new WA.Module(Buffer.from(UNDISTORT_REMAP_WASM, 'base64')), {}).exports as Exports;
  } catch {
    return null;
  }
  const n = lut.index.length;
  // layout: index | weights | float src | float out (4 bytes each per pixel) | byte src | byte out
  const need = 18 * n;
  const have = ex.memory.buffer.byteLength;
  if (need > have) ex.memory.grow(Math.ceil((need - have) / 65536));
  const mem = ex.memory.buffer;
  new Int32Array(mem, 0, n).set(lut.index);
  new Uint32Array(mem, 4 * n, n).set(lut.weights);
  const src = new Float32Array(mem, 8 * n, n);
  const out = new Float32Array(mem, 12 * n, n);
  const srcB = new Uint8Array(mem, 16 * n, n);
  const outB = new Uint8Array(mem, 17 * n, n);
  const check = (a: number, b: number): void => {
    if (a !== n || b !== n) throw new RangeError(`remap: ${a} in, ${b} out, the table has ${n}`);
  };
  return {
    remapF32(s, o) {
      check(s.length, o.length);
      src.set(s);
      ex.remapf32(8 * n, 0, 4 * n, 12 * n, n, lut.width);
      o.set(out);
    },
    remapU8(s, o) {
      check(s.length, o.length);
      srcB.set(s);
      ex.remapu8(16 * n, 0, 4 * n, 17 * n, n, lut.width);
      o.set(outB);
    },
  };
}
