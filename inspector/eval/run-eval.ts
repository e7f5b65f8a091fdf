/**
 * Evaluate a model package (or per-pair teaching) on a dataset and build the
 * report (report-schema.ts). Each image is read with the appliance's decoder
 * (readGray), scored with the package's own preprocessing (package-scorer.ts),
 * decided with the station's rule (effective threshold, minimum defect area,
 * unregistrable = reject: `decision-rule.ts` `decideOutput`, through `PackageScorer.verdict`), and its defect regions are the
 * connected components of the map at that threshold
 * (`regionsFromMap`, minDefectAreaPx applied), in image pixels.
 *
 * Per-pair teach (DeepPCB): for each pair, a package is taught from the
 * template alone (`teachPackage`), then the tested image is judged with it.
 *
 * An item that cannot be evaluated (a template teach cannot use, an image that
 * does not decode: `skippableCode`) is listed in the report's `skipped` with
 * its code and reason, and the run goes on; it is in no metric.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGray, type GrayImage } from '../core/gray-image.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { effectiveThreshold } from '../inference/decision-rule.js';
import type { DefectRegion } from '../inference/defect-regions.js';
import { percentile } from '../inference/model-runner.js';
import type { EvalDataset, EvalItem } from './dataset-types.js';
import { EvalDatasetError, EvalEmptyError, EvalImageError, EvalOptionError } from './errors.js';
import {
  auroc, confusion, groundTruthFromMask, matchRegions, operatingPoints, perClassRecall, precisionRecallF1, type GroundTruth, type RegionMatch,
} from './metrics.js';
import { regionsInImage } from './map-geometry.js';
import { PackageScorer, type ScoredImage } from './package-scorer.js';
import type { EvalImageRecord, EvalReport } from './report-schema.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { teachPackage, type TeachOptions } from '../teach/teach-package.js';

export interface RunEvalOptions {
  dataset: EvalDataset;
  /** package folder; not used with teachPerPair */
  modelDir?: string;
  teachPerPair?: boolean;
  /** teachPackage's downscale for per-pair teaching */
  teachDownscale?: number;
  /** further teachPackage options for per-pair teaching (variation, halfLevel, smoothPx, mapPool, registration) */
  teachOptions?: Partial<Omit<TeachOptions, 'good' | 'outDir' | 'name' | 'version' | 'trainingData' | 'log'>>;
  /** per-pair teach chooses the options not given from each template (teachPackage `auto`; default true) */
  teachAuto?: boolean;
  intraOpNumThreads?: number;
  perImage?: boolean;
  command?: string;
  log?: Logger;
  onProgress?: (done: number, total: number) => void;
}

async function groundTruthOf(item: EvalItem, img: GrayImage): Promise<GroundTruth> {
  if (item.boxes) return { kind: 'boxes', boxes: item.boxes };
  if (item.mask) {
    const m = await readGray(item.mask);
    if (m.width !== img.width || m.height !== img.height) {
      throw new EvalDatasetError(`${item.mask}: mask ${m.width}x${m.height} but image ${img.width}x${img.height}`);
    }
    return groundTruthFromMask(m.data, m.width, m.height, item.defectClass);
  }
  return item.label === 'good' ? { kind: 'boxes', boxes: [] } : { kind: 'none' };
}

interface Judged { record: EvalImageRecord; match: RegionMatch | null }

async function judge(scorer: PackageScorer, item: EvalItem, img: GrayImage): Promise<Judged> {
  const s: ScoredImage = await scorer.score(img);
  // the station's rule (part-loop.ts): effective threshold, minimum defect area on a single-channel map,
  // and an unregistrable frame is a reject (UNREGISTRABLE)
  const threshold = effectiveThreshold(scorer.manifest);
  const { minDefectAreaPx } = scorer.manifest.decision;
  // the one decision module (decision-rule.ts decideOutput), as the line, the shadow and the gate decide
  const predicted = scorer.verdict(s, img.width, img.height).verdict === 'reject';
  const regions: DefectRegion[] = s.map
    ? regionsInImage(scorer.manifest, s.map, s.mapWidth, s.mapHeight, img.width, img.height, threshold, minDefectAreaPx)
    : [];
  const gt = await groundTruthOf(item, img);
  // no map (classification, or a frame not registered): no regions; with localised GT they all count as missed
  const match = gt.kind !== 'none' && (s.map || s.registered === false) ? matchRegions(regions, gt) : null;
  return {
    match,
    record: {
      id: item.id, label: item.label, defectClass: item.defectClass, width: img.width, height: img.height,
      // an unregistrable frame is rejected unscored: it ranks as the most defective for the AUROC
      score: s.registered === false ? 1 : s.score, predictedDefect: predicted, ms: s.ms, regions, registered: s.registered,
      ...(s.registrationReason !== undefined ? { registrationReason: s.registrationReason } : {}),
      gtDefects: match?.gtTotal ?? null, gtHit: match?.gtHit ?? null, falseRegions: match?.falseRegions ?? null,
    },
  };
}

/** An item (a pair, an image) left out of the run, and why. */
export interface SkippedItem { item: string; code: string; reason: string }

/**
 * The errors that leave one item out instead of ending the run: a template
 * that cannot be taught (none registrable, a size teach cannot use) and an
 * image that cannot be decoded. Anything else (bad options, a broken package,
 * a bug) still ends the run.
 */
const SKIPPABLE = new Set(['INSPECTOR_TEACH_NO_IMAGES', 'INSPECTOR_TEACH_IMAGE_SIZE', 'INSPECTOR_EVAL_IMAGE']);

export function skippableCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SKIPPABLE.has(code) ? code : null;
}

/** readGray, with a decoding failure as a coded error (INSPECTOR_EVAL_IMAGE) that skips the item. */
async function readImage(path: string): Promise<GrayImage> {
  try {
    return await readGray(path);
  } catch (err) {
    throw new EvalImageError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function runEval(opts: RunEvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const { dataset } = opts;
  const log = opts.log ?? rootLogger;
  const judged: Judged[] = [];
  const skipped: SkippedItem[] = [];
  let model: EvalReport['model'];
  let teachOptions: EvalReport['teach_options'];
  const threads = opts.intraOpNumThreads ?? 1;
  /** run one item; a skippable error is recorded and the run goes on */
  const attempt = async (id: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (err) {
      const code = skippableCode(err);
      if (!code) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      skipped.push({ item: id, code, reason });
      log.warn({ item: id, code, reason }, 'eval: item skipped');
    }
  };

  if (opts.teachPerPair) {
    const pairs = dataset.items.filter((i) => i.label === 'defect' && i.template);
    if (pairs.length === 0) throw new EvalOptionError('--teach-per-pair needs a dataset of template/tested pairs (DeepPCB)');
    const scratch = await mkdtemp(join(tmpdir(), 'inspector-eval-teach-'));
    // one package per pair: its "taught" info line would drown the output
    const teachLog = log.child({ mod: 'eval-teach' }, { level: 'warn' });
    let last: Manifest | null = null;
    // the options each pair was taught with (training.teach.options), counted
    const optionCounts = new Map<string, number>();
    try {
      for (const [i, item] of pairs.entries()) {
        await attempt(item.pair ?? item.id, async () => {
          const template = await readImage(item.template!);
          const tested = await readImage(item.image);
          const { packageDir } = await teachPackage({
            ...opts.teachOptions,
            good: [template], outDir: join(scratch, `pair-${i}`), name: 'pair', version: '1.0.0',
            trainingData: `template ${item.template}`, ...(opts.teachDownscale ? { downscale: opts.teachDownscale } : {}),
            auto: opts.teachAuto ?? true, log: teachLog,
          });
          const scorer = await PackageScorer.open(packageDir, { intraOpNumThreads: threads });
          try {
            judged.push(await judge(scorer, item, tested));
          } finally {
            await scorer.close();
          }
          last = scorer.manifest;
          const taught = (scorer.manifest.training as { teach?: { options?: unknown } }).teach?.options;
          const key = JSON.stringify(taught ?? null);
          optionCounts.set(key, (optionCounts.get(key) ?? 0) + 1);
        });
        await rm(join(scratch, `pair-${i}`), { recursive: true, force: true });
        opts.onProgress?.(i + 1, pairs.length);
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    const m = last as Manifest | null;
    if (!m) throw new EvalEmptyError(`no pair could be judged; ${skippedSummary(skipped)}`);
    teachOptions = [...optionCounts].sort((a, b) => b[1] - a[1])
      .map(([k, pairs]) => ({ options: JSON.parse(k) as Record<string, unknown>, pairs }));
    model = {
      source: `per-pair teach (teachPackage on each template${opts.teachAuto ?? true ? ', options chosen from it' : ', fixed defaults'})`, name: m.name, version: m.version, kind: m.outputs.kind,
      threshold: effectiveThreshold(m), minDefectAreaPx: m.decision.minDefectAreaPx,
      registration: m.registration ? 'applied' : 'none',
    };
  } else {
    if (!opts.modelDir) throw new EvalOptionError('--model is required (or --teach-per-pair)');
    const scorer = await PackageScorer.open(opts.modelDir, { intraOpNumThreads: threads });
    try {
      for (const [i, item] of dataset.items.entries()) {
        await attempt(item.id, async () => { judged.push(await judge(scorer, item, await readImage(item.image))); });
        opts.onProgress?.(i + 1, dataset.items.length);
      }
    } finally {
      await scorer.close();
    }
    if (judged.length === 0) throw new EvalEmptyError(`no image could be judged; ${skippedSummary(skipped)}`);
    const m = scorer.manifest;
    model = {
      source: opts.modelDir, name: m.name, version: m.version, kind: m.outputs.kind,
      threshold: effectiveThreshold(m), minDefectAreaPx: m.decision.minDefectAreaPx,
      registration: m.registration ? 'applied' : 'none',
    };
  }
  const report = buildReport(judged, skipped, dataset, model, opts, (performance.now() - t0) / 1000);
  return teachOptions ? { ...report, teach_options: teachOptions } : report;
}

/** "3 skipped (INSPECTOR_TEACH_NO_IMAGES 2, INSPECTOR_EVAL_IMAGE 1)" */
export function skippedSummary(skipped: readonly SkippedItem[]): string {
  const byCode = new Map<string, number>();
  for (const s of skipped) byCode.set(s.code, (byCode.get(s.code) ?? 0) + 1);
  return `${skipped.length} skipped${byCode.size ? ` (${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}`;
}

function buildReport(judged: Judged[], skipped: SkippedItem[], dataset: EvalDataset, model: EvalReport['model'], opts: RunEvalOptions,
  seconds: number): EvalReport {
  const recs = judged.map((j) => j.record);
  const positive = recs.map((r) => r.label === 'defect');
  const predicted = recs.map((r) => r.predictedDefect);
  const c = confusion(predicted, positive);
  const prf = precisionRecallF1(c);
  const ms = recs.map((r) => r.ms);
  const matches = judged.map((j) => j.match).filter((m): m is RegionMatch => m !== null);
  const sum = (f: (m: RegionMatch) => number): number => matches.reduce((a, m) => a + f(m), 0);
  const gtDefects = sum((m) => m.gtTotal);
  const gtHit = sum((m) => m.gtHit);
  const falseRegions = sum((m) => m.falseRegions);
  const perClassRegion: EvalReport['regions']['per_class_recall'] = {};
  for (const m of matches) {
    for (const [cls, v] of Object.entries(m.perClass)) {
      const e = (perClassRegion[cls] ??= { recall: 0, hit: 0, total: 0 });
      e.hit += v.hit;
      e.total += v.total;
    }
  }
  for (const e of Object.values(perClassRegion)) e.recall = e.total ? e.hit / e.total : 0;
  const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e6) / 1e6);
  return {
    schemaVersion: 1,
    model,
    dataset: {
      root: dataset.root, layout: dataset.layout, split: dataset.split, images: recs.length,
      good: positive.filter((p) => !p).length, defective: positive.filter(Boolean).length,
      classes: dataset.classes, teachPerPair: opts.teachPerPair ?? false, skipped: skipped.length,
    },
    image_auroc: round(auroc(recs.map((r) => r.score), positive)),
    threshold: model.threshold,
    precision: round(prf.precision),
    recall: round(prf.recall),
    f1: round(prf.f1),
    accuracy: round(prf.accuracy),
    false_reject_rate: round(c.fp + c.tn > 0 ? c.fp / (c.fp + c.tn) : null),
    unregistrable: recs.filter((r) => r.registered === false).length,
    unregistrable_items: recs.filter((r) => r.registered === false)
      .map((r) => ({ item: r.id, reason: r.registrationReason ?? 'not registrable' })),
    skipped,
    operating_points: operatingPoints(recs.map((r) => r.score), positive).map((p) => ({
      ...p, threshold: round(p.threshold)!, recall: round(p.recall)!, false_reject_rate: round(p.false_reject_rate),
    })),
    confusion_matrix: c,
    per_class_recall: perClassRecall(recs.map((r) => r.defectClass), predicted),
    latency_ms: { p50: round(percentile(ms, 0.5)) ?? 0, p99: round(percentile(ms, 0.99)) ?? 0, runs: ms.length },
    defect_region_recall: round(gtDefects > 0 ? gtHit / gtDefects : null),
    false_regions_per_image: round(matches.length > 0 ? falseRegions / matches.length : null),
    regions: {
      images: matches.length, gt_defects: gtDefects, gt_hit: gtHit, predicted: sum((m) => m.predicted), false: falseRegions,
      per_class_recall: Object.fromEntries(Object.entries(perClassRegion).sort(([a], [b]) => a.localeCompare(b))),
    },
    seconds: Math.round(seconds * 10) / 10,
    command: opts.command ?? '',
    ...(opts.perImage ? { per_image: recs } : {}),
  };
}
