/**
 * The manifest's `resize: area` with integer factors, done in the worker on
 * the uint8 frame: box-average fx×fy blocks and normalise in one pass.
 *
 * The compiled-graph path (Cast → AveragePool → Mul/Add in ONNX) computes the
 * same numbers, but it first widens the whole 1.3 MP frame to a 5.2 MB float
 * tensor: on a 2-core station that memory traffic, cold in cache after capture,
 * cost ~1 ms per frame. Here the frame is read once, four pixels per 32-bit
 * load, and only the small model input is written. Tests hold the two paths
 * equal to float rounding.
 */

export interface BinningPlan {
  width: number;
  height: number;
  factorX: number;
  factorY: number;
  /** y = mean * mul + add (mul = scale/std, add = -mean/std) */
  mul: number;
  add: number;
}

/** Whether the fast path applies: gray, integer factors, rows of whole 32-bit words. */
export function canBin(plan: { channels: number; resize: { kind: string; factorX?: number; factorY?: number } }, frameWidth: number): boolean {
  return plan.channels === 1 && plan.resize.kind === 'area' && plan.resize.factorX === 4 && frameWidth % 4 === 0
    && (plan.resize.factorY ?? 0) >= 1 && (plan.resize.factorY ?? 0) <= 128;
}

/**
 * Sum `fy` rows of 4-pixel words, starting at word `row`, into `acc` (one word per output pixel,
 * two 16-bit lanes); returns the word index of the next block row.
 */
function sumBlockRows(words: Uint32Array, row: number, outW: number, fy: number, acc: Uint32Array): number {
  acc.fill(0);
  for (let r = 0; r < fy; r++) {
    let i = row;
    for (let ox = 0; ox < outW; ox++) {
      const w = words[i++]!;
      acc[ox]! += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    }
    row += outW;
  }
  return row;
}

/**
 * Bin `src` (width×height GRAY8, its byteOffset a multiple of 4) into `out`
 * ((height/fy)×(width/4) floats). `acc` is a scratch row of width/4 words.
 *
 * Each 32-bit load holds 4 pixels; `(w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff)`
 * sums them in pairs into two 16-bit lanes, which cannot overflow for up to
 * 128 rows (128 × 510 < 65536); the lanes are added once per output pixel.
 */
export function binArea4(src: Uint8Array, p: BinningPlan, out: Float32Array, acc: Uint32Array): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, (p.width * p.height) >>> 2);
  const outW = p.width >>> 2;
  const outH = (p.height / p.factorY) | 0;
  const k = p.mul / (4 * p.factorY);
  const add = p.add;
  let row = 0;
  for (let oy = 0; oy < outH; oy++) {
    row = sumBlockRows(words, row, outW, p.factorY, acc);
    const base = oy * outW;
    for (let ox = 0; ox < outW; ox++) {
      const s = acc[ox]!;
      out[base + ox] = ((s & 0xffff) + (s >>> 16)) * k + add;
    }
  }
}

/**
 * binArea4 into gray bytes: each output pixel is the block mean rounded to
 * nearest (halves up), in integers, exactly what `resizeGray(…, area)` gives.
 * The registration path works on bytes; this skips a float pass and a rounding pass.
 */
export function binArea4U8(src: Uint8Array, p: Pick<BinningPlan, 'width' | 'height' | 'factorY'>, out: Uint8Array, acc: Uint32Array): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, (p.width * p.height) >>> 2);
  const outW = p.width >>> 2;
  const outH = (p.height / p.factorY) | 0;
  const n2 = 8 * p.factorY;
  const half = 4 * p.factorY;
  const shift = Math.log2(n2);
  const pow2 = Number.isInteger(shift);
  let row = 0;
  for (let oy = 0; oy < outH; oy++) {
    row = sumBlockRows(words, row, outW, p.factorY, acc);
    const base = oy * outW;
    // round(s / n) = floor((2s + n) / 2n), n = 4·fy
    if (pow2) {
      for (let ox = 0; ox < outW; ox++) {
        const s = acc[ox]!;
        out[base + ox] = (2 * ((s & 0xffff) + (s >>> 16)) + half) >>> shift;
      }
    } else {
      for (let ox = 0; ox < outW; ox++) {
        const s = acc[ox]!;
        out[base + ox] = Math.floor((2 * ((s & 0xffff) + (s >>> 16)) + half) / n2);
      }
    }
  }
}
