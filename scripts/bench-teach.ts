/**
 * `npm run bench -- --teach N`: a registering package taught from the first N
 * good parts of test-images/train, so the benchmark of the registration path
 * needs no package made by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGray } from '../inspector/core/gray-image.js';
import { teachPackage } from '../inspector/teach/teach-package.js';

export async function teachFromTrainSplit(n: number, outDir: string, split = 'test-images/train'): Promise<string> {
  const gt = JSON.parse(readFileSync(join(split, 'ground-truth.json'), 'utf8')) as { images: Array<{ file: string; label: string }> };
  const files = gt.images.filter((i) => i.label === 'good').slice(0, n).map((i) => join(split, i.file));
  if (files.length === 0) throw new Error(`${split}: no good parts to teach from`);
  const good = await Promise.all(files.map((f) => readGray(f)));
  const r = await teachPackage({ good, outDir, name: 'taught', version: '1.0.0', trainingData: `${split} (first ${files.length} good parts)`,
    command: `npm run bench -- --teach ${n}` });
  process.stdout.write(`bench: taught ${r.manifest.name} from ${good.length - r.skipped.length} good part(s) → ${r.packageDir}\n`);
  return r.packageDir;
}
