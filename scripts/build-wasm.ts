/**
 * Compiles inspector/inference/wasm/*.wat with wabt (SIMD on) and prints, per
 * module, its size and base64 — the string embedded in the TS module that uses
 * it (area-binning.wat → AREA_BINNING_WASM in area-binning-wasm.ts).
 * `test/preprocess-paths.test.ts` compiles the source the same way and checks
 * that the embedded module is the compiled source.
 *
 *   npx tsx scripts/build-wasm.ts
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import wabtInit from 'wabt';

export async function compileWat(file: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat(file, readFileSync(file, 'utf8'), { simd: true });
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const dir = join(import.meta.dirname, '..', 'inspector', 'inference', 'wasm');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.wat'))) {
    const bytes = await compileWat(join(dir, f));
    process.stdout.write(`${f}: ${bytes.length} bytes\n${Buffer.from(bytes).toString('base64')}\n`);
  }
}
