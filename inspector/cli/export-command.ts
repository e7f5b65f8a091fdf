/**
 * `inspector export --format mvtec|coco|yolo --out DIR [filters]`: a dataset
 * export from the station's results, images and labels, in this process (the
 * station's hot path is elsewhere), with a progress bar on a terminal (else a
 * progress line on stderr at least every 30 s).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { logger } from '../core/logger.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { exportProgressReporter, runExport } from '../export/run-export.js';
import { EXPORT_FORMATS, type ExportFilter, type ExportFormat } from '../export/schema.js';

/** ISO date/time or epoch milliseconds. */
function parseTime(v: string): number {
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`not a date or epoch ms: ${v}`);
  return ms;
}
const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').filter(Boolean)];

interface ExportFlags {
  format: ExportFormat; out: string; db: string; reviewDb?: string; images: string; classes?: string[];
  from?: number; to?: number; verdict?: 'pass' | 'reject'; label?: 'true_defect' | 'false_reject'; class?: string[];
  modelName?: string; modelVersion?: string; run?: string; all?: boolean; copy?: boolean; progress: boolean;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('export labelled parts as a dataset (Anomalib Folder/MVTec, COCO or YOLO); same selection, same bytes')
    .addOption(new Option('--format <f>', 'dataset format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .requiredOption('--out <dir>', 'export folder (must not exist or be empty)')
    .option('--db <file>', 'results database', 'var/results.sqlite')
    .option('--review-db <file>', 'review database (default: review.sqlite next to --db)')
    .option('--images <dir>', 'images root the result rows are relative to (results.imagesDir)', 'var')
    .option('--classes <list>', "the station's class list, in id order (comma-separated; default: the classes used)", collect)
    .option('--from <time>', 'captured at or after (ISO time or epoch ms)', parseTime)
    .option('--to <time>', 'captured before (ISO time or epoch ms)', parseTime)
    .addOption(new Option('--verdict <v>', "the model's verdict").choices(['pass', 'reject']))
    .addOption(new Option('--label <l>', "the reviewer's verdict").choices(['true_defect', 'false_reject']))
    .option('--class <name>', 'defect class to keep (repeatable or comma-separated; good parts are kept)', collect)
    .option('--model-name <name>', 'model name')
    .option('--model-version <version>', 'model version')
    .option('--run <runId>', 'one run only')
    .option('--all', 'also export unlabelled passes as good (default: labelled parts only)')
    .option('--copy', 'copy images instead of hard-linking them')
    .option('--no-progress', 'no progress bar (on a terminal) or progress lines (otherwise)')
    .action(async (o: ExportFlags) => {
      const filter: ExportFilter = {};
      if (o.from !== undefined) filter.from = o.from;
      if (o.to !== undefined) filter.to = o.to;
      if (o.verdict) filter.verdict = o.verdict;
      if (o.label) filter.label = o.label;
      if (o.class?.length) filter.classes = o.class;
      if (o.modelName) filter.modelName = o.modelName;
      if (o.modelVersion) filter.modelVersion = o.modelVersion;
      if (o.run) filter.runId = o.run;
      if (o.all) filter.labelledOnly = false;
      // a bar per phase on a terminal, else a line on stderr at least every 30 s (core/progress.ts)
      const progress = exportProgressReporter({ enabled: o.progress });
      const { onProgress } = progress;
      const res = await runExport({
        format: o.format, filter, resultsDbPath: o.db, reviewDbPath: o.reviewDb ?? reviewDbPathFor(o.db),
        imagesDir: o.images, outDir: o.out, stationClasses: o.classes ?? [], images: o.copy ? 'copy' : 'link',
        actor: `cli:${process.env.USER ?? 'unknown'}`, onProgress, log: logger.child({ mod: 'export' }),
      }).finally(() => progress.stop());
      process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    });
}
