/**
 * Synthetic checkerboard views for trying `inspector calibrate lens` without a
 * camera: a known camera (printed, and written to truth.json) sees a 9x6 board
 * of 5 mm squares in N varied poses, with sensor noise.
 *
 *   npx tsx scripts/generate-calibration-boards.ts --out .cache/boards --views 12
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeGrayPng } from '../inspector/core/gray-image.js';
import { renderBoard, variedPoses } from '../calibration/synthetic-board.js';
import type { CameraModel } from '../calibration/camera-model.js';

const o = new Command('generate-calibration-boards')
  .option('--out <dir>', 'output folder', '.cache/boards')
  .option('--views <n>', 'number of views', (v) => parseInt(v, 10), 12)
  .option('--seed <n>', 'pose seed', (v) => parseInt(v, 10), 11)
  .parse(process.argv).opts<{ out: string; views: number; seed: number }>();

const camera: CameraModel = { fx: 1500, fy: 1490, cx: 652, cy: 505, dist: [-0.12, 0.08, 0.001, -0.0015, -0.02] };
const board = { cols: 9, rows: 6, squareMm: 5 };
const size = { width: 1280, height: 1024 };
mkdirSync(o.out, { recursive: true });
const poses = variedPoses(camera, board, size, o.views, o.seed);
for (const [i, pose] of poses.entries()) {
  await writeGrayPng(join(o.out, `board-${String(i).padStart(2, '0')}.png`), renderBoard(camera, board, pose, { ...size, noise: 2, seed: i + 1 }), 1);
}
writeFileSync(join(o.out, 'truth.json'), JSON.stringify({ camera, board, poses }, null, 2) + '\n');
process.stdout.write(`${poses.length} views in ${o.out} (truth.json holds the camera)\n`);
