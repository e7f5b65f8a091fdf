/**
 * Deterministic synthetic fixtures: parts on a conveyor, with ground truth.
 *
 *   npx tsx scripts/generate-test-images.ts --out test-images [--seed 1] [--train 320] [--test 240]
 *
 * Same seed and counts → byte-identical files. Layout: see test-images/README.md.
 */
import { parseArgs } from 'node:util';
import { generateDataset } from './fixtures/dataset.js';

function intArg(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'test-images' },
      seed: { type: 'string' },
      train: { type: 'string' },
      test: { type: 'string' },
      concurrency: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write('usage: tsx scripts/generate-test-images.ts --out DIR [--seed 1] [--train 320] [--test 240] [--concurrency 2] [--quiet]\n');
    return;
  }
  const seed = intArg('seed', values.seed, 1, 0);
  const train = intArg('train', values.train, 320, 0);
  const test = intArg('test', values.test, 240, 0);
  const concurrency = intArg('concurrency', values.concurrency, 2, 1);
  const out = values.out ?? 'test-images';
  const started = process.hrtime.bigint();
  let lastPct = -1;
  const gt = await generateDataset({
    out, seed, train, test, concurrency,
    onProgress: (split, done, total) => {
      if (values.quiet) return;
      const pct = Math.floor((done / total) * 10);
      if (pct !== lastPct || done === total) {
        lastPct = done === total ? -1 : pct;
        process.stderr.write(`${split}: ${done}/${total}\n`);
      }
    },
  });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  for (const split of ['train', 'test'] as const) {
    const imgs = gt[split].images;
    const defects = imgs.filter((i) => i.label === 'defect').length;
    process.stdout.write(`${out}/${split}: ${imgs.length} images, ${defects} defective (seed ${gt[split].splitSeed})\n`);
  }
  process.stdout.write(`done in ${secs.toFixed(1)} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`generate-test-images: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
