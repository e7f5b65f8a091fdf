import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { Command, InvalidArgumentError, Option } from 'commander';
import { logger } from '../core/logger.js';
import { createProgress } from '../core/progress.js';
import { openDataset } from '../eval/datasets.js';
import { LAYOUTS, type Layout } from '../eval/dataset-types.js';
import { EvalOptionError } from '../eval/errors.js';
import { EvalReport } from '../eval/report-schema.js';
import { runEval, skippedSummary } from '../eval/run-eval.js';
import { parseTeachOptionsArg, type TeachCliOverrides } from './teach-command.js';

interface EvalCliOptions {
  model?: string;
  dataset: string;
  json: string;
  layout?: Layout;
  teachPerPair?: boolean;
  teachDownscale?: number;
  teachOptions?: TeachCliOverrides;
  teachAuto: boolean;
  split?: string;
  limit?: number;
  threads: number;
  perImage?: boolean;
  progress: boolean;
}

const positiveInt = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};

/** `--layout L`: a dataset layout instead of detection (eval and retune). */
export function layoutOption(): Option {
  return new Option('--layout <layout>', `dataset layout, detected when left out (${LAYOUTS.join('|')})`)
    .argParser((v: string): Layout => {
      if (!(LAYOUTS as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${LAYOUTS.join(', ')}`);
      return v as Layout;
    });
}

/** The figures worth a line on the terminal. */
function summary(r: EvalReport): string {
  const f = (v: number | null, d = 4): string => (v === null ? 'n/a' : v.toFixed(d));
  const c = r.confusion_matrix;
  return [
    `${r.dataset.images} images (${r.dataset.good} good, ${r.dataset.defective} defective), ${r.dataset.layout}`
      + `${r.dataset.split ? ` split ${r.dataset.split}` : ''}; model ${r.model.name}@${r.model.version} (${r.model.kind}), threshold ${r.threshold}`,
    `image_auroc ${f(r.image_auroc)}  precision ${f(r.precision)}  recall ${f(r.recall)}  f1 ${f(r.f1)}  accuracy ${f(r.accuracy)}`,
    `confusion tp ${c.tp} fp ${c.fp} tn ${c.tn} fn ${c.fn};  per class: ${Object.entries(r.per_class_recall).map(([k, v]) => `${k} ${v.detected}/${v.total}`).join(', ') || 'n/a'}`,
    `operating points: ${r.operating_points.map((p) => `recall ${f(p.recall, 3)} at threshold ${f(p.threshold, 3)} rejects ${f(p.false_reject_rate, 3)} of good`).join('; ') || 'n/a'}`,
    `defect_region_recall ${f(r.defect_region_recall)} (${r.regions.gt_hit}/${r.regions.gt_defects})  false_regions_per_image ${f(r.false_regions_per_image, 3)}`,
    `latency p50 ${r.latency_ms.p50.toFixed(2)} ms  p99 ${r.latency_ms.p99.toFixed(2)} ms  (${r.seconds} s in all)`,
    ...(r.teach_options ?? []).map((t) => `teach options (${t.pairs} pair(s)): ${JSON.stringify(t.options)}`),
    `${skippedSummary(r.skipped)} (in no metric); unregistrable ${r.unregistrable} (rejected, as on the station)`,
    ...r.skipped.slice(0, 5).map((s) => `  skipped ${s.item}: ${s.code}: ${s.reason}`),
    ...(r.skipped.length > 5 ? [`  … ${r.skipped.length - 5} more skipped in the report`] : []),
  ].join('\n');
}

/**
 * `inspector eval --model PKG --dataset DIR --json FILE`: score a dataset
 * with a model package exactly as the station would, and write the metrics.
 */
export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a model package on a labelled dataset (Folder/MVTec, DeepPCB, magnetic tile, fixtures)')
    .option('-m, --model <dir>', 'model package folder (model.onnx + manifest.json)')
    .requiredOption('-d, --dataset <dir>', 'dataset folder')
    .requiredOption('-j, --json <file>', 'write the report (JSON) here')
    .addOption(layoutOption())
    .option('--teach-per-pair', 'DeepPCB: teach a package from each pair\'s template, then judge its tested image')
    .option('--teach-downscale <n>', 'downscale passed to teachPackage (per-pair teach)', positiveInt('--teach-downscale'))
    .option('--teach-options <json>', 'teach options for per-pair teach, as JSON, overriding what is chosen from each template (e.g. \'{"halfLevel":20}\')', parseTeachOptionsArg)
    .option('--no-teach-auto', 'per-pair teach with the fixed teach defaults instead of options chosen from each template')
    .option('--split <name>', 'Folder/MVTec: the split folder (train|test); DeepPCB: the list file')
    .option('--limit <n>', 'evaluate at most N images (DeepPCB: N pairs)', positiveInt('--limit'))
    .option('--threads <n>', 'onnxruntime intra-op threads', positiveInt('--threads'), 1)
    .option('--per-image', 'include every image\'s score and regions in the report')
    .option('--no-progress', 'no progress bar (on a terminal) or progress lines (otherwise)')
    .action(async (o: EvalCliOptions) => {
      const log = logger.child({ mod: 'eval' });
      if (!o.model && !o.teachPerPair) throw new EvalOptionError('--model PKG is required (or --teach-per-pair)');
      if (o.model && o.teachPerPair) throw new EvalOptionError('--model and --teach-per-pair exclude each other');
      const dataset = await openDataset(o.dataset, { layout: o.layout, split: o.split, limit: o.limit });
      // a bar on a terminal, else a line on stderr at least every 30 s (core/progress.ts)
      const progress = createProgress({ label: o.teachPerPair ? 'eval (pairs)' : 'eval', enabled: o.progress });
      progress.start(o.teachPerPair ? dataset.items.filter((i) => i.template).length : dataset.items.length);
      const report = await runEval({
        dataset, ...(o.model ? { modelDir: o.model } : {}), teachPerPair: o.teachPerPair ?? false,
        ...(o.teachDownscale ? { teachDownscale: o.teachDownscale } : {}),
        ...(o.teachOptions ? { teachOptions: o.teachOptions } : {}), teachAuto: o.teachAuto,
        intraOpNumThreads: o.threads, perImage: o.perImage ?? false, log,
        command: ['inspector', ...process.argv.slice(2)].join(' '),
        onProgress: (done, total) => progress.update(done, total),
      }).finally(() => progress.stop());
      if (!Value.Check(EvalReport, report)) {
        const e = [...Value.Errors(EvalReport, report)][0];
        throw new Error(`internal: report does not match its schema at ${e?.path}: ${e?.message}`);
      }
      await mkdir(dirname(o.json), { recursive: true });
      await writeFile(o.json, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`${summary(report)}\nwrote ${o.json}\n`);
    });
}
