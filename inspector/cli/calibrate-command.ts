/**
 * `inspector calibrate …`: lens, plane, ROI and focus/exposure reference,
 * each saved as a new version of the station's calibration file.
 *
 *   inspector calibrate lens  --images DIR --board 9x6 --square-mm 5
 *   inspector calibrate plane --image F --board 9x6 --square-mm 5
 *   inspector calibrate plane --image F --points "x,y;x,y;x,y;x,y" --mm "0,0;80,0;80,60;0,60"
 *   inspector calibrate roi   --rect x,y,w,h
 *   inspector calibrate check --image F [--save]
 *   inspector calibrate versions | activate <n>
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { readGray } from '../core/gray-image.js';
import { CalibrationStore } from '../../calibration/calibration-file.js';
import { calibrateLens } from '../../calibration/lens-calibration.js';
import { planeFromBoard, planeFromPoints } from '../../calibration/plane.js';
import { parseRect, validateRoi } from '../../calibration/roi.js';
import { computeChecks, DEFAULT_BANDS } from '../../calibration/image-checks.js';
import { CalibrationBadInputError, CalibrationMissingError } from '../../calibration/errors.js';
import type { BoardSpec } from '../../calibration/synthetic-board.js';

interface Common { dir: string; station: string; actor: string; note?: string }

const out = (s: string): void => { process.stdout.write(s + '\n'); };

function parseBoard(spec: string, squareMm: number): BoardSpec {
  const m = /^(\d+)x(\d+)$/.exec(spec);
  if (!m) throw new CalibrationBadInputError(`--board "${spec}": expected COLSxROWS of inner corners, e.g. 9x6`);
  return { cols: parseInt(m[1]!, 10), rows: parseInt(m[2]!, 10), squareMm };
}

function parsePoints(text: string, what: string): Array<{ x: number; y: number }> {
  const pts = text.split(';').map((p) => p.split(',').map((v) => Number(v.trim())));
  if (pts.some((p) => p.length !== 2 || p.some((v) => !Number.isFinite(v)))) {
    throw new CalibrationBadInputError(`${what} "${text}": expected "x,y;x,y;…"`);
  }
  return pts.map(([x, y]) => ({ x: x!, y: y! }));
}

const withCommon = (c: Command): Command => c
  .option('--dir <dir>', 'calibration folder of the station', 'var/calibration')
  .option('--station <name>', 'station name written into the file', 'station-1')
  .option('--actor <name>', 'who calibrates (recorded in the version)', process.env.USER ?? 'cli')
  .option('--note <text>', 'note for this version');

const storeOf = (o: Common): CalibrationStore => new CalibrationStore(o.dir, o.station);

export function calibrateCommand(): Command {
  const cmd = new Command('calibrate').description('calibrate the station: lens, plane and scale, ROI, focus/exposure reference');

  cmd.addCommand(withCommon(new Command('lens'))
    .description('camera matrix and distortion from checkerboard images')
    .requiredOption('--images <dir>', 'folder of board images (PNG/JPEG/BMP/TIFF), all the same size')
    .requiredOption('--board <CxR>', 'inner corners, e.g. 9x6')
    .requiredOption('--square-mm <mm>', 'side of one square in mm', parseFloat)
    .option('--min-views <n>', 'views that must show the board', (v) => parseInt(v, 10), 10)
    .option('--dry-run', 'report, do not save')
    .action(async (o: Common & { images: string; board: string; squareMm: number; minViews: number; dryRun?: boolean }) => {
      const board = parseBoard(o.board, o.squareMm);
      const files = readdirSync(o.images).filter((f) => /\.(png|jpe?g|bmp|tiff?)$/i.test(f)).sort();
      const images = await Promise.all(files.map(async (f) => ({ name: f, image: await readGray(join(o.images, f)) })));
      const r = calibrateLens(images, board, { minViews: o.minViews });
      for (const v of r.views) out(`${v.found ? 'board ' : 'NO BOARD'} ${v.name}${v.rms !== null ? `  rms ${v.rms.toFixed(3)} px` : ''}`);
      const c = r.camera;
      out(`fx ${c.fx.toFixed(2)}  fy ${c.fy.toFixed(2)}  cx ${c.cx.toFixed(2)}  cy ${c.cy.toFixed(2)}`);
      out(`dist k1 ${c.dist[0].toFixed(5)}  k2 ${c.dist[1].toFixed(5)}  p1 ${c.dist[2].toFixed(5)}  p2 ${c.dist[3].toFixed(5)}  k3 ${c.dist[4].toFixed(5)}`);
      out(`RMS reprojection error ${r.rms.toFixed(3)} px over ${r.used} views (${r.distinct} distinct)`);
      if (o.dryRun) return;
      const doc = storeOf(o).save({ lens: { camera: c, imageSize: r.imageSize, board, rms: r.rms, views: r.used, distinctViews: r.distinct } },
        { actor: o.actor, note: o.note ?? `lens from ${files.length} images in ${o.images}` });
      out(`saved ${o.dir} version ${doc.version}`);
    }));

  cmd.addCommand(withCommon(new Command('plane'))
    .description('homography to the conveyor plane and mm per pixel, from a board on the belt or four marked points')
    .requiredOption('--image <file>', 'image of the plane (board lying on it, or with the marked points)')
    .option('--board <CxR>', 'inner corners of the board on the plane')
    .option('--square-mm <mm>', 'square side, mm', parseFloat)
    .option('--points <list>', 'image points "x,y;x,y;x,y;x,y" (frame pixels)')
    .option('--mm <list>', 'their plane positions in mm, same order')
    .option('--dry-run', 'report, do not save')
    .action(async (o: Common & { image: string; board?: string; squareMm?: number; points?: string; mm?: string; dryRun?: boolean }) => {
      const img = await readGray(o.image);
      const lens = storeOf(o).current()?.lens?.camera ?? null;
      let plane;
      if (o.board) {
        if (!o.squareMm) throw new CalibrationBadInputError('--board needs --square-mm');
        plane = planeFromBoard(img, parseBoard(o.board, o.squareMm), lens);
      } else if (o.points && o.mm) {
        plane = planeFromPoints(parsePoints(o.points, '--points'), parsePoints(o.mm, '--mm'), img, lens);
      } else {
        throw new CalibrationBadInputError('give --board COLSxROWS --square-mm MM, or --points and --mm');
      }
      out(`mm per pixel ${plane.mmPerPx.toFixed(5)} (x ${plane.mmPerPxX.toFixed(5)}, y ${plane.mmPerPxY.toFixed(5)}) at the image centre`);
      out(`residual ${plane.residualMm.toFixed(4)} mm; ${plane.undistorted ? 'through the lens calibration' : 'NO lens calibration: raw pixels'}`);
      if (o.dryRun) return;
      const doc = storeOf(o).save({ plane }, { actor: o.actor, note: o.note ?? `plane from ${o.image}` });
      out(`saved ${o.dir} version ${doc.version}`);
    }));

  cmd.addCommand(withCommon(new Command('roi'))
    .description('store the region of interest (frame pixels)')
    .requiredOption('--rect <x,y,w,h>', 'rectangle in frame pixels')
    .option('--width <px>', 'frame width', (v) => parseInt(v, 10), 1280)
    .option('--height <px>', 'frame height', (v) => parseInt(v, 10), 1024)
    .action((o: Common & { rect: string; width: number; height: number }) => {
      const roi = validateRoi(parseRect(o.rect), { width: o.width, height: o.height });
      const doc = storeOf(o).save({ roi }, { actor: o.actor, note: o.note ?? 'ROI' });
      out(`ROI ${roi.x},${roi.y} ${roi.width}x${roi.height} saved: ${o.dir} version ${doc.version}`);
    }));

  cmd.addCommand(withCommon(new Command('check'))
    .description('focus (Tenengrad, Laplacian variance) and exposure (mean, saturation) of an image; --save makes it the reference')
    .requiredOption('--image <file>', 'image from the station camera')
    .option('--save', 'save as the reference the running station compares against')
    .action(async (o: Common & { image: string; save?: boolean }) => {
      const img = await readGray(o.image);
      const roi = storeOf(o).current()?.roi ?? null;
      const c = computeChecks(img.data, img.width, img.height, { roi, step: 2 });
      out(`sharpness: tenengrad ${c.tenengrad.toFixed(1)}  laplacian variance ${c.laplacianVar.toFixed(1)}`);
      out(`exposure: mean ${c.mean.toFixed(1)}  p1 ${c.p01}  p99 ${c.p99}  saturated ${(c.saturatedFraction * 100).toFixed(2)} %  dark ${(c.darkFraction * 100).toFixed(2)} %`);
      if (!o.save) return;
      const doc = storeOf(o).save({ checks: { reference: { tenengrad: c.tenengrad, laplacianVar: c.laplacianVar, mean: c.mean,
        saturatedFraction: c.saturatedFraction, darkFraction: c.darkFraction }, bands: { ...DEFAULT_BANDS } } },
      { actor: o.actor, note: o.note ?? `check reference from ${o.image}` });
      out(`saved ${o.dir} version ${doc.version}`);
    }));

  cmd.addCommand(withCommon(new Command('versions')).description('list the calibration versions')
    .action((o: Common) => {
      const list = storeOf(o).list();
      if (list.length === 0) throw new CalibrationMissingError(`no calibration in ${o.dir}`);
      for (const v of list) out(`${v.current ? '*' : ' '} v${v.version}  ${v.createdAt}  ${v.createdBy}  [${v.sections.join(', ')}]  ${v.note ?? ''}`);
    }));

  cmd.addCommand(withCommon(new Command('activate')).description('point the station at an earlier (or later) version')
    .argument('<version>', 'version number', (v) => parseInt(v, 10))
    .action((version: number, o: Common) => {
      storeOf(o).activate(version);
      out(`${o.dir}: current version ${version}`);
    }));
  return cmd;
}
