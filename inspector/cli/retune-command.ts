/**
 * `inspector retune --model PKG --dataset DIR --recall R --version V --out DIR`:
 * choose a package's threshold on held-out parts (a split the model never saw,
 * or the station's golden set) for a wanted recall, and write the package
 * again as a new version with it (`eval/retune-threshold.ts`). Push and
 * promote the new version as any other: the validation gate still applies.
 */
import { Command, InvalidArgumentError } from 'commander';
import { openDataset } from '../eval/datasets.js';
import type { Layout } from '../eval/dataset-types.js';
import { retuneThreshold } from '../eval/retune-threshold.js';
import { layoutOption } from './eval-command.js';

interface RetuneCliOptions {
  model: string;
  dataset: string;
  recall: number;
  version: string;
  out: string;
  layout?: Layout;
  split?: string;
}

const fraction = (v: string): number => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('a number in (0, 1]');
  return n;
};

export function retuneCommand(): Command {
  return new Command('retune')
    .description('choose a package\'s threshold for a wanted recall on a labelled held-out set; write it as a new version')
    .requiredOption('-m, --model <dir>', 'model package folder')
    .requiredOption('-d, --dataset <dir>', 'labelled held-out images (Folder/MVTec, magnetic tile, fixtures)')
    .requiredOption('--recall <r>', 'the wanted recall on the defective images, e.g. 0.95', fraction)
    .requiredOption('--version <v>', 'version of the retuned package')
    .requiredOption('-o, --out <dir>', 'folder for the retuned package (must not exist)')
    .addOption(layoutOption())
    .option('--split <name>', 'Folder/MVTec: the split folder (train|test)')
    .action(async (o: RetuneCliOptions) => {
      const dataset = await openDataset(o.dataset, { layout: o.layout, split: o.split });
      const r = await retuneThreshold({
        modelDir: o.model, dataset, recall: o.recall, version: o.version, outDir: o.out,
        command: ['inspector', ...process.argv.slice(2)].join(' '),
      });
      const f = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(4));
      const { defective, good } = r.report.dataset;
      process.stdout.write(`${defective} defective and ${good} good images; the station's rule:\n`
        + `  threshold ${f(r.previousThreshold)}: recall ${f(r.report.recall)}, false-reject rate ${f(r.report.false_reject_rate)}\n`
        + `  threshold ${f(r.point.threshold)}: recall ${f(r.after.recall)}, false-reject rate ${f(r.after.false_reject_rate)}\n`
        + `wrote ${r.packageDir}\n`);
    });
}
