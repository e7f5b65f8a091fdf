/**
 * `inspector teach --good DIR --out PKG`: teach a variation model from good
 * images in a folder and write it as a model package (see inspector/teach/).
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { readGray } from '../core/gray-image.js';
import { logger } from '../core/logger.js';
import { createProgress, type Progress } from '../core/progress.js';
import { teachPackage, type TeachPhase } from '../teach/teach-package.js';
import { TeachNoImagesError, TeachOptionsInvalidError } from '../teach/errors.js';
import { CalibrationStore } from '../../calibration/calibration-file.js';

const IMAGE_EXT = /\.(png|jpe?g|bmp|tiff?)$/i;

interface TeachCliOptions {
  good: string; out: string; name?: string; version: string; downscale: number; limit?: number;
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
    .option('--version <v>', 'package version', '1.0.0')
    .option('--downscale <n>', 'integer frame → model input factor', int, 4)
    .option('--limit <n>', 'use at most n images (sorted by name)', int)
    .option('--no-registration', 'take the images as already aligned; do not register frames at run time')
    .option('--lens <dir>', 'undistort with the current lens calibration of this station calibration folder (e.g. var/calibration), as the station does')
    .option('--map-pool <n>', 'anomaly-map cell size in model-input pixels', int)
    .option('--max-shift-px <n>', 'registration: largest shift accepted (model-input pixels)', parseFloat)
    .option('--max-rotation-deg <n>', 'registration: largest rotation accepted', parseFloat)
    .option('--min-quality <q>', 'registration: lowest quality (0..1) accepted', parseFloat)
    .option('--no-progress', 'no progress bar (on a terminal) or progress lines (otherwise)')
    .action(async (o: TeachCliOptions) => {
      const files = (await readdir(o.good)).filter((f) => IMAGE_EXT.test(f)).sort().slice(0, o.limit ?? Infinity);
      if (files.length === 0) throw new TeachNoImagesError(`no image files in ${o.good}`);
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
        good, outDir: o.out, name, version: o.version, downscale: o.downscale,
        trainingData: `${o.good} (${files.length} good image(s))`,
        command: `inspector teach ${process.argv.slice(3).join(' ')}`,
        registration: o.registration ? reg : false,
        ...(lens ? { lens: lens.camera } : {}),
        ...(o.mapPool !== undefined ? { mapPool: o.mapPool } : {}),
        log: logger,
        onProgress: (done: number, total: number, p: TeachPhase) => report(done, total, p),
      }).finally(() => (progress as Progress | null)?.stop());
      process.stdout.write(`taught ${r.manifest.name}@${r.manifest.version} from ${good.length - r.skipped.length} image(s)`
        + `${r.skipped.length ? ` (${r.skipped.length} not registrable, left out)` : ''} → ${r.packageDir}\n`
        + `input ${r.manifest.input.shape.join('x')}, max score on the teaching images ${Math.max(...r.teachScores).toFixed(3)}`
        + ` (threshold ${r.manifest.decision.threshold})\n`);
    });
}
