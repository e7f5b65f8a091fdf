/**
 * Decode image files to 8-bit gray for the Python trainer, with the SAME
 * decoder the appliance and `inspector eval` use (`readGray`, sharp): the
 * network is trained on exactly the pixel values it is later scored on.
 * (Debian's python3 has no JPEG decoder; this also avoids a second one.)
 *
 * stdin:  JSON array of file paths
 * stdout: for each path, in order: uint32 LE width, uint32 LE height, width*height bytes
 *
 *   npx tsx models/training/decode_images.ts < list.json > pixels.bin
 */
import { readGray } from '../../inspector/core/gray-image.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const paths = JSON.parse(await readStdin()) as unknown;
if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) {
  process.stderr.write('decode_images: stdin must be a JSON array of paths\n');
  process.exit(2);
}
for (const p of paths as string[]) {
  let img;
  try {
    img = await readGray(p);
  } catch (err) {
    process.stderr.write(`decode_images: ${p}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const header = Buffer.alloc(8); // a fresh one: a queued write keeps a reference
  header.writeUInt32LE(img.width, 0);
  header.writeUInt32LE(img.height, 4);
  if (!process.stdout.write(header)) await new Promise((r) => process.stdout.once('drain', r));
  if (!process.stdout.write(img.data)) await new Promise((r) => process.stdout.once('drain', r));
}
