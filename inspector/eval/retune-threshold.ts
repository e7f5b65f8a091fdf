/**
 * Choose a package's threshold on held-out parts: score a labelled dataset
 * with the package exactly as `inspector eval` does, take the operating point
 * for the wanted recall (`operatingPoints`: the highest threshold at which at
 * least that share of the defective images scores >= threshold), and write a
 * copy of the package as a new version with that threshold.
 *
 * The model file and the listed files are copied byte for byte (their sha256
 * values stay valid); only the manifest changes: `version`,
 * `decision.threshold` (and the class threshold of a single-defect-class
 * package, which the station applies instead: `effectiveThreshold`), and
 * `training.threshold`, which records where the threshold came from. The new
 * package is loaded and checked like any pushed package, then scored again on
 * the same images with the station's whole rule (the minimum defect area
 * included, which the score-only operating point leaves out): `after`.
 *
 * Refused with a coded error: a package decided per class (several defect
 * classes), a dataset without both good and defective images, an output
 * folder that exists (nothing is overwritten), and the package's own version.
 */
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { effectiveThreshold } from '../inference/decision-rule.js';
import { loadModelPackage, MANIFEST_FILE, MODEL_FILE, parseManifest } from '../inference/model-package.js';
import type { Manifest } from '../inference/manifest-schema.js';
import type { EvalDataset } from './dataset-types.js';
import { EvalEmptyError, EvalOptionError } from './errors.js';
import { operatingPoints, type OperatingPoint } from './metrics.js';
import type { EvalReport } from './report-schema.js';
import { runEval } from './run-eval.js';

export interface RetuneOptions {
  modelDir: string;
  dataset: EvalDataset;
  /** the wanted recall on the dataset's defective images, in (0, 1] */
  recall: number;
  outDir: string;
  /** the new package's version (must differ from the package's own) */
  version: string;
  intraOpNumThreads?: number;
  command?: string;
}

export interface RetuneResult {
  packageDir: string;
  previousThreshold: number;
  point: OperatingPoint;
  /** the dataset scored with the original package (its threshold) */
  report: EvalReport;
  /** the same images judged by the retuned package */
  after: EvalReport;
}

const exists = async (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

export async function retuneThreshold(o: RetuneOptions): Promise<RetuneResult> {
  if (!(o.recall > 0 && o.recall <= 1)) throw new EvalOptionError(`--recall must be in (0, 1], not ${o.recall}`);
  if (await exists(o.outDir)) throw new EvalOptionError(`${o.outDir} exists: the retuned package needs a new folder`);
  const manifest: Manifest = parseManifest(await readFile(join(o.modelDir, MANIFEST_FILE), 'utf8'), join(o.modelDir, MANIFEST_FILE));
  if (manifest.version === o.version) throw new EvalOptionError(`version ${o.version} is the package's own: give the retuned package a new one`);
  if (manifest.outputs.defectClasses.length !== 1) {
    throw new EvalOptionError(`${manifest.name}@${manifest.version} is decided per class (${manifest.outputs.defectClasses.length} defect classes): set its class thresholds by hand`);
  }

  const report = await runEval({
    dataset: o.dataset, modelDir: o.modelDir, perImage: true, intraOpNumThreads: o.intraOpNumThreads ?? 1,
    ...(o.command ? { command: o.command } : {}),
  });
  const recs = report.per_image!;
  if (report.dataset.good === 0 || report.dataset.defective === 0) {
    throw new EvalEmptyError(`${o.dataset.root}: choosing a threshold needs good and defective images (${report.dataset.good} good, ${report.dataset.defective} defective)`);
  }
  const point = operatingPoints(recs.map((r) => r.score), recs.map((r) => r.label === 'defect'), [o.recall])[0]!;
  const previousThreshold = effectiveThreshold(manifest);

  const decision = { ...manifest.decision, threshold: point.threshold };
  const defectClass = manifest.outputs.defectClasses[0]!;
  const perClass = (manifest.decision as { classThresholds?: Record<string, number> }).classThresholds;
  if (perClass?.[defectClass] !== undefined) decision.classThresholds = { ...perClass, [defectClass]: point.threshold };
  const retuned = {
    ...manifest,
    version: o.version,
    decision,
    training: {
      ...manifest.training,
      threshold: {
        from: `${manifest.name}@${manifest.version}`, previous: previousThreshold, targetRecall: o.recall,
        recall: point.recall, falseRejectRate: point.false_reject_rate,
        dataset: o.dataset.root, layout: o.dataset.layout, split: o.dataset.split,
        good: report.dataset.good, defective: report.dataset.defective, ...(o.command ? { command: o.command } : {}),
      },
    },
  };

  await mkdir(o.outDir, { recursive: true });
  for (const f of [MODEL_FILE, ...(manifest.files ?? [])]) await copyFile(join(o.modelDir, f), join(o.outDir, f));
  await writeFile(join(o.outDir, MANIFEST_FILE), `${JSON.stringify(retuned, null, 2)}\n`);
  await loadModelPackage(o.outDir); // the copy is a complete, consistent package, or this throws its code
  const after = await runEval({ dataset: o.dataset, modelDir: o.outDir, intraOpNumThreads: o.intraOpNumThreads ?? 1 });
  return { packageDir: o.outDir, previousThreshold, point, report, after };
}
