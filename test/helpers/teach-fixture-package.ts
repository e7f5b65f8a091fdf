/**
 * Teach a registration package from good fixture parts in a child process:
 *   npx tsx test/helpers/teach-fixture-package.ts <outDir> [count]
 * Tests whose process must not load OpenCV itself (its binding may be loaded by one
 * thread per process, and a station's server worker loads it for lens and plane fits)
 * run this instead of calling teachPackage in-process. Prints the package folder.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readGray } from '../../inspector/core/gray-image.js';
import { teachPackage } from '../../inspector/teach/teach-package.js';

const [outDir, count = '8'] = process.argv.slice(2);
if (!outDir) throw new Error('usage: teach-fixture-package.ts <outDir> [count]');
const files = (JSON.parse(readFileSync('test-images/train/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> })
  .images.filter((i) => i.label === 'good').slice(0, Number(count)).map((i) => `test-images/train/${i.file}`);
const good = await Promise.all(files.map((f) => readGray(f)));
const r = await teachPackage({ good, outDir: resolve(outDir), name: 'bracket-taught', version: '1.0.0', downscale: 4,
  trainingData: `test-images/train (${good.length} good parts)` });
process.stdout.write(`${r.packageDir}\n`);
