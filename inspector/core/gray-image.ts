/**
 * An 8-bit single-channel image in memory, row-major, no padding: the common
 * currency of teaching, registration, calibration and evaluation. Files are
 * read and written with sharp (PNG, JPEG, BMP, TIFF in; PNG out).
 */
import sharp from 'sharp';

export interface GrayImage {
  width: number;
  height: number;
  /** width * height bytes, row-major */
  data: Uint8Array;
}

/** Read any image file sharp understands as 8-bit gray (colour is converted with sharp's b-w). */
export async function readGray(path: string): Promise<GrayImage> {
  const { data, info } = await sharp(path).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) {
    // an alpha channel survives b-w: keep the first channel only
    const out = new Uint8Array(info.width * info.height);
    for (let i = 0, j = 0; i < out.length; i++, j += info.channels) out[i] = data[j]!;
    return { width: info.width, height: info.height, data: out };
  }
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Write a gray image as PNG. */
export async function writeGrayPng(path: string, img: GrayImage, compressionLevel = 6): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 1 } })
    .png({ compressionLevel }).toFile(path);
}

/** Encode a gray image as PNG bytes. */
export async function encodeGrayPng(img: GrayImage, compressionLevel = 6): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 1 } })
    .png({ compressionLevel }).toBuffer();
}
