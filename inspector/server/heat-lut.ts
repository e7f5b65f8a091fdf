/**
 * The heatmap colour map shared by the part image routes and their render worker:
 * 256 entries, black-body-ish (transparent blue → red → yellow), RGBA bytes.
 * No imports: the render worker loads it without the server's modules.
 */
export const HEAT_LUT_RGBA: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    lut[i * 4] = Math.round(255 * Math.min(1, t * 2));
    lut[i * 4 + 1] = Math.round(255 * Math.max(0, t * 2 - 1));
    lut[i * 4 + 2] = Math.round(255 * Math.max(0, 1 - t * 3));
    lut[i * 4 + 3] = Math.round(255 * Math.min(1, t * 1.5));
  }
  return lut;
})();

/** The same map as one UInt32 per entry (native byte order), for writing a pixel at once. */
export const HEAT_LUT_U32 = new Uint32Array(HEAT_LUT_RGBA.buffer);
