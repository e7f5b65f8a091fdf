/**
 * Generates test-images/ unless a complete set is already there. The set is
 * deterministic (seeded), so a present, complete set is the same set.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const out = join(root, 'test-images');

function complete(split: string): boolean {
  const gt = join(out, split, 'ground-truth.json');
  if (!existsSync(gt)) return false;
  try {
    const images = (JSON.parse(readFileSync(gt, 'utf8')) as { images: Array<{ file: string }> }).images;
    return images.length > 0 && images.every((i) => existsSync(join(out, split, i.file)));
  } catch {
    return false;
  }
}

if (complete('train') && complete('test')) {
  console.log('fixtures: test-images/ complete');
} else {
  console.log('fixtures: generating test-images/ (deterministic, ~1 min)');
  execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/generate-test-images.ts'), '--out', out], { stdio: 'inherit', cwd: root });
}

// The QA UI bundle (ui/dist, gitignored) is built here too, so `npm test` and
// scripts/setup.sh (which runs this file) both leave a station that serves its pages.
const { buildUi } = await import('./build-ui.js');
const ui = await buildUi();
console.log(`ui: built ui/dist in ${ui.ms.toFixed(0)} ms`);
