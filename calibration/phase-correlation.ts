/**
 * Phase correlation in plain JS (fft.js, radix-4, power-of-two sizes): the
 * translation between two same-size gray images. No OpenCV, so it runs in any
 * thread (the station's inference workers included).
 *
 *   const pc = new PhaseCorrelator(width, height);
 *   const ref = pc.spectrum(refPixels);                  // once (allocates)
 *   pc.spectrumInto(imgPixels, spec);                    // per frame, no allocation
 *   pc.correlate(spec, ref, shift);                      // shift: { dx, dy, peak }
 *
 * `img(q) = ref(q - (dx, dy))` gives a peak at (dx, dy). Both images are
 * mean-subtracted and Hann-windowed over their own width×height, then placed in
 * the top-left corner of a zero canvas of the next power-of-two size (fft.js
 * needs powers of two; zero padding also keeps the circular correlation from
 * wrapping content around). The cross-power spectrum is whitened (phase only)
 * and the peak refined to sub-pixel by a 3x3 centroid. `peak` is the
 * correlation height: about 1 for identical content, near 0 for unrelated
 * images (the inverse transform is scaled by 1/N, like OpenCV's DFT_SCALE).
 *
 * All scratch buffers are allocated once per correlator.
 */
import FFT from 'fft.js';

export interface Shift {
  dx: number;
  dy: number;
  /** phase-correlation peak height, ~1 identical, ~0 unrelated */
  peak: number;
}

function nextPow2(n: number): number {
  let p = 2;
  while (p < n) p <<= 1;
  return p;
}

export class PhaseCorrelator {
  /** the padded (power-of-two) transform size */
  readonly fftWidth: number;
  readonly fftHeight: number;
  private readonly window: Float32Array;
  private readonly rowFft: FFT;
  private readonly colFft: FFT;
  /** one padded real row, one complex row/column in and out */
  private readonly realRow: Float64Array;
  private readonly cin: Float64Array;
  private readonly cout: Float64Array;
  /** complex work plane (fftWidth*fftHeight interleaved re/im) */
  private readonly plane: Float64Array;

  constructor(readonly width: number, readonly height: number) {
    if (width < 2 || height < 2) throw new RangeError(`phase correlation needs at least 2x2, got ${width}x${height}`);
    this.fftWidth = nextPow2(width);
    this.fftHeight = nextPow2(height);
    const n = width * height;
    this.window = new Float32Array(n);
    for (let y = 0; y < height; y++) {
      const wy = 0.5 - 0.5 * Math.cos((2 * Math.PI * y) / Math.max(1, height - 1));
      for (let x = 0; x < width; x++) {
        this.window[y * width + x] = wy * (0.5 - 0.5 * Math.cos((2 * Math.PI * x) / Math.max(1, width - 1)));
      }
    }
    this.rowFft = new FFT(this.fftWidth);
    this.colFft = new FFT(this.fftHeight);
    this.realRow = new Float64Array(this.fftWidth);
    const m = Math.max(this.fftWidth, this.fftHeight);
    this.cin = new Float64Array(2 * m);
    this.cout = new Float64Array(2 * m);
    this.plane = new Float64Array(2 * this.fftWidth * this.fftHeight);
  }

  /** A new spectrum buffer of the right size. */
  createSpectrum(): Float64Array {
    return new Float64Array(2 * this.fftWidth * this.fftHeight);
  }

  /** Complex spectrum of a mean-subtracted, windowed, zero-padded image (allocates the result). */
  spectrum(pixels: ArrayLike<number>): Float64Array {
    const out = this.createSpectrum();
    this.spectrumInto(pixels, out);
    return out;
  }

  /** The same into `out` (createSpectrum() size): no allocation. */
  spectrumInto(pixels: ArrayLike<number>, out: Float64Array): void {
    const { width, height, fftWidth: PW, fftHeight: PH } = this;
    const n = width * height;
    if (pixels.length !== n) throw new RangeError(`spectrum: ${pixels.length} pixels, expected ${n}`);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += pixels[i]!;
    const mean = sum / n;
    const w = this.window;
    const row = this.realRow;
    const co = this.cout;
    // rows: real transform of each image row (padded rows below are zero: their spectrum is zero)
    out.fill(0);
    for (let y = 0; y < height; y++) {
      for (let x = 0, i = y * width; x < width; x++, i++) row[x] = (pixels[i]! - mean) * w[i]!;
      for (let x = width; x < PW; x++) row[x] = 0;
      this.rowFft.realTransform(co, row);
      this.rowFft.completeSpectrum(co);
      out.set(co.subarray(0, 2 * PW), 2 * PW * y);
    }
    this.columns(out, false);
  }

  /** Transform every column of the complex plane `p` in place (forward or inverse). */
  private columns(p: Float64Array, inverse: boolean): void {
    const { fftWidth: PW, fftHeight: PH } = this;
    const ci = this.cin;
    const co = this.cout;
    for (let x = 0; x < PW; x++) {
      for (let y = 0, j = 2 * x; y < PH; y++, j += 2 * PW) { ci[2 * y] = p[j]!; ci[2 * y + 1] = p[j + 1]!; }
      if (inverse) this.colFft.inverseTransform(co, ci); else this.colFft.transform(co, ci);
      for (let y = 0, j = 2 * x; y < PH; y++, j += 2 * PW) { p[j] = co[2 * y]!; p[j + 1] = co[2 * y + 1]!; }
    }
  }

  /** Translation of the image whose spectrum is `a` relative to the one of `b`, written into `out`. */
  correlate(a: Float64Array, b: Float64Array, out: Shift = { dx: 0, dy: 0, peak: 0 }): Shift {
    const { fftWidth: PW, fftHeight: PH } = this;
    const p = this.plane;
    // whitened cross-power spectrum a·conj(b)/|a·conj(b)|
    for (let i = 0; i < p.length; i += 2) {
      const ar = a[i]!; const ai = a[i + 1]!; const br = b[i]!; const bi = b[i + 1]!;
      const re = ar * br + ai * bi;
      const im = ai * br - ar * bi;
      const k = 1 / (Math.sqrt(re * re + im * im) + 1e-12);
      p[i] = re * k;
      p[i + 1] = im * k;
    }
    // inverse: columns, then rows (only the real part of the result is used)
    this.columns(p, true);
    const ci = this.cin;
    const co = this.cout;
    let best = -Infinity;
    let bx = 0;
    let by = 0;
    for (let y = 0; y < PH; y++) {
      const o = 2 * PW * y;
      for (let k = 0; k < 2 * PW; k++) ci[k] = p[o + k]!;
      this.rowFft.inverseTransform(co, ci);
      for (let x = 0; x < PW; x++) {
        const v = co[2 * x]!;
        p[o + 2 * x] = v; // the real surface, kept at even slots for the centroid
        if (v > best) { best = v; bx = x; by = y; }
      }
    }
    // 3x3 centroid around the peak (wrapping), for sub-pixel shifts
    let sw = 0;
    let sx = 0;
    let sy = 0;
    for (let oy = -1; oy <= 1; oy++) {
      const yy = (by + oy + PH) % PH;
      for (let ox = -1; ox <= 1; ox++) {
        const xx = (bx + ox + PW) % PW;
        const v = Math.max(0, p[2 * (yy * PW + xx)]!);
        sw += v;
        sx += v * ox;
        sy += v * oy;
      }
    }
    let dx = bx + (sw > 0 ? sx / sw : 0);
    let dy = by + (sw > 0 ? sy / sw : 0);
    if (dx > PW / 2) dx -= PW;
    if (dy > PH / 2) dy -= PH;
    out.dx = dx;
    out.dy = dy;
    out.peak = best;
    return out;
  }
}
