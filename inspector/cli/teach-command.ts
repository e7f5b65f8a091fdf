/**
 * `inspector teach --good DIR --out PKG`: teach a variation model from good
 * images in a folder and write it as a model package (see inspector/teach/).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { readGray } from '../core/gray-image.js';
import { logger } from '../core/logger.js';
import { createProgress, type Progress } from '../core/progress.js';
import { teachPackage, type TeachOptions, type TeachPhase } from '../teach/teach-package.js';
import { TeachNoImagesError, TeachOptionsInvalidError } from '../teach/errors.js';
import { CalibrationStore } from '../../calibration/calibration-file.js';

const IMAGE_EXT = /\.(png|jpe?g|bmp|tiff?)$/i;

/** The teachPackage options `--options` (teach) and `--teach-options` (eval) accept: what `training.teach.options` lists. */
export const TEACH_OPTION_KEYS = ['downscale', 'registration', 'variation', 'smoothPx', 'halfLevel', 'mapPool', 'localShiftPx',
  'localShiftBlockPx', 'openSizePx', 'minDefectAreaPx'] as const;
export type TeachCliOverrides = Partial<Pick<TeachOptions, typeof TEACH_OPTION_KEYS[number]>>;

/** Parse a JSON object of teach options (a manifest's `training.teach.options`, edited); unknown keys are refused. */
export function parseTeachOptionsArg(v: string): TeachCliOverrides {
  let o: unknown;
  try { o = JSON.parse(v); } catch { throw new InvalidArgumentError('not JSON'); }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InvalidArgumentError('a JSON object');
  const unknown = Object.keys(o).filter((k) => !(TEACH_OPTION_KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new InvalidArgumentError(`unknown option(s) ${unknown.join(', ')} (known: ${TEACH_OPTION_KEYS.join(', ')})`);
  return o as TeachCliOverrides;
}

/** One line per chosen option: `downscale 1 (auto: …)`. */
export function describeTeachOptions(training: Record<string, unknown>): string {
  const t = training.teach as { options: Record<string, unknown>; how: Record<string, string> } | undefined;
  if (!t) return '';
  const short = (h: string | undefined): string => (h ?? '').replace(/^auto: /, '').slice(0, 110);
  const lines = Object.entries(t.options).filter(([k]) => k !== 'variation')
    .map(([k, v]) => `  ${k} ${JSON.stringify(v)}  (${t.how[k]?.startsWith('auto') ? `auto: ${short(t.how[k])}` : t.how[k] ?? ''})`);
  const variation = t.options.variation as Record<string, number>;
  const vChanged = Object.entries(variation).filter(([k]) => !(t.how[`variation.${k}`] ?? '').startsWith('default'))
    .map(([k, v]) => `${k} ${v}`);
  lines.push(`  variation ${vChanged.length ? vChanged.join(', ') : '(defaults)'}`);
  return lines.join('\n');
}

/**
 * The package version: `--version`, else the last folder of `--out` when it is a version
 * (models/x/2.0.0 → 2.0.0), else 1.0.0. Both given and different is refused: the registry keeps a
 * package at <name>/<version>/, so the folder and the manifest must agree.
 */
export function teachVersion(out: string, version: string | undefined): string {
  const fromOut = /^\d+\.\d+\.\d+$/.test(basename(resolve(out))) ? basename(resolve(out)) : null;
  if (version !== undefined && fromOut !== null && version !== fromOut) {
    throw new TeachOptionsInvalidError(`--version ${version} but --out ${out} ends in version ${fromOut}: give one of them, or make them agree`);
  }
  return version ?? fromOut ?? '1.0.0';
}

/** The images of --good, or one clear coded error naming the folder and what to give (not `ENOENT: …`). */
async function goodImages(dir: string, limit: number | undefined): Promise<string[]> {
  const abs = resolve(dir);
  const isDir = await stat(abs).then((st) => st.isDirectory(), () => false);
  if (!isDir) throw new TeachNoImagesError(`there is no folder ${abs} (--good): give the folder that holds the good part images (png, jpg, bmp, tif)`);
  const files = (await readdir(abs)).filter((f) => IMAGE_EXT.test(f)).sort().slice(0, limit ?? Infinity);
  if (files.length === 0) throw new TeachNoImagesError(`no image files (png, jpg, bmp, tif) in ${abs} (--good)`);
  return files;
}

interface TeachCliOptions {
  good: string; out: string; name?: string; version?: string; downscale?: number; limit?: number; options?: TeachCliOverrides; auto: boolean;
  registration: boolean; lens?: string; mapPool?: number; maxShiftPx?: number; maxRotationDeg?: number; minQuality?: number;
  progress: boolean;
}

export function teachCommand(): Command {
  const int = (v: string): number => parseInt(v, 10);
  return new Command('teach')
    .description('teach a variation model (ONNX package) from good images: align, learn per-pixel reference and tolerance')
    .requiredOption('--good <dir>', 'folder of good images (png, jpg, bmp, tif), one part each, same size')
    .requiredOption('--out <dir>', 'package folder to write, e.g. models/bracket-taught/1.0.0')
    .option('--name <name>', 'package name (default: the parent folder of --out)')
    .option('--version <v>', 'package version (default: the last folder of --out when it is one, e.g. models/x/2.0.0, else 1.0.0)')
    .option('--downscale <n>', 'integer frame → model input factor (default: chosen from the images; 4 without --no-auto)', int)
    .option('--options <json>', 'teach options as JSON, overriding what is chosen from the images (the manifest\'s training.teach.options, edited)', parseTeachOptionsArg)
    .option('--no-auto', 'do not choose options from the images: the fixed defaults (downscale 4, registration, no envelope)')
    .option('--limit <n>', 'use at most n images (sorted by name)', int)
    .option('--no-registration', 'take the images as already aligned; do not register frames at run time')
    .option('--lens <dir>', 'undistort with the current lens calibration of this station calibration folder (e.g. var/calibration), as the station does')
    .option('--map-pool <n>', 'anomaly-map cell size in model-input pixels', int)
    .option('--max-shift-px <n>', 'registration: largest shift accepted (model-input pixels)', parseFloat)
    .option('--max-rotation-deg <n>', 'registration: largest rotation accepted', parseFloat)
    .option('--min-quality <q>', 'registration: lowest quality (0..1) accepted', parseFloat)
    .option('--no-progress', 'no progress bar (on a terminal) or progress lines (otherwise)')
    .action(async (o: TeachCliOptions) => {
      const version = teachVersion(o.out, o.version);
      const files = await goodImages(o.good, o.limit);
      // one reporter per phase (read, register, self-check): a bar on a terminal, else a line on stderr at least every 30 s
      let progress: Progress | null = null;
      let phase = '';
      const report = (done: number, total: number, p: string): void => {
        if (p !== phase) {
          progress?.stop();
          phase = p;
          progress = createProgress({ label: `teach ${p}`, enabled: o.progress });
          progress.start(total);
        }
        progress!.update(done, total);
      };
      const good = [];
      for (const f of files) {
        good.push(await readGray(join(o.good, f)));
        report(good.length, files.length, 'read');
      }
      const name = o.name ?? basename(join(o.out, '..'));
      const lens = o.lens ? new CalibrationStore(o.lens).current()?.lens ?? null : null;
      if (o.lens && !lens) throw new TeachOptionsInvalidError(`--lens ${o.lens}: no current lens calibration there`);
      if (lens && (lens.imageSize.width !== good[0]!.width || lens.imageSize.height !== good[0]!.height)) {
        throw new TeachOptionsInvalidError(`--lens: calibrated for ${lens.imageSize.width}x${lens.imageSize.height}, the images are ${good[0]!.width}x${good[0]!.height}`);
      }
      const reg = { ...(o.maxShiftPx !== undefined ? { maxShiftPx: o.maxShiftPx } : {}),
        ...(o.maxRotationDeg !== undefined ? { maxRotationDeg: o.maxRotationDeg } : {}),
        ...(o.minQuality !== undefined ? { minQuality: o.minQuality } : {}) };
      const r = await teachPackage({
        ...o.options,
        good, outDir: o.out, name, version, auto: o.auto,
        ...(o.downscale !== undefined ? { downscale: o.downscale } : {}),
        trainingData: `${o.good} (${files.length} good image(s))`,
        command: `inspector teach ${process.argv.slice(3).join(' ')}`,
        // registration: --no-registration or registration limits given; else the options' or auto's choice
        ...(!o.registration ? { registration: false } : Object.keys(reg).length ? { registration: reg } : {}),
        ...(lens ? { lens: lens.camera } : {}),
        ...(o.mapPool !== undefined ? { mapPool: o.mapPool } : {}),
        log: logger,
        onProgress: (done: number, total: number, p: TeachPhase) => report(done, total, p),
      }).finally(() => (progress as Progress | null)?.stop());
      process.stdout.write(`taught ${r.manifest.name}@${r.manifest.version} from ${good.length - r.skipped.length} image(s)`
        + `${r.skipped.length ? ` (${r.skipped.length} not registrable, left out)` : ''} → ${r.packageDir}\n`
        + `input ${r.manifest.input.shape.join('x')}, max score on the teaching images ${Math.max(...r.teachScores).toFixed(3)}`
        + ` (threshold ${r.manifest.decision.threshold})\n`
        + `options (manifest training.teach; override with --options '{…}'):\n${describeTeachOptions(r.manifest.training as Record<string, unknown>)}\n`);
    });
}
