/**
 * What the simulated line needs to know of a replay folder (demo, bench): how
 * many distinct parts it holds (the PLC simulator's `items`: part n is image
 * (n - 1) % items, in the replay cache's order) and, when a ground-truth.json
 * sits one level up (test-images/<split>/ground-truth.json), which of them are
 * defective, so the simulator can count escapes (a defective part accepted).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const IMAGE_RE = /\.(png|jpe?g)$/i;

export interface ReplayLine {
  items: number;
  /** indexes of the defective items; null without a ground truth */
  defectiveItems: number[] | null;
}

export function replayLine(folder: string): ReplayLine {
  const dir = resolve(folder);
  const names = readdirSync(dir).filter((n) => IMAGE_RE.test(n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const gtFile = join(dir, '..', 'ground-truth.json');
  if (!existsSync(gtFile)) return { items: names.length, defectiveItems: null };
  try {
    const gt = JSON.parse(readFileSync(gtFile, 'utf8')) as { images?: Array<{ file: string; label: string }> };
    const bad = new Set((gt.images ?? []).filter((i) => i.label !== 'good').map((i) => basename(i.file)));
    return { items: names.length, defectiveItems: names.flatMap((n, i) => (bad.has(n) ? [i] : [])) };
  } catch {
    return { items: names.length, defectiveItems: null };
  }
}
