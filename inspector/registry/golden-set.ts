/**
 * The station's golden set: labelled images kept by the station, on which a
 * candidate model must score at least as well as the live one (minus a
 * margin) before it may go live. Also the frames the candidate's latency is
 * measured on ("warm-up frames").
 *
 * A folder with a `ground-truth.json` in the fixtures' format
 * (`{ images: [{ file, label: 'good' | 'defect' }] }`, files relative to the
 * folder). `limit` keeps a class-balanced subset (first N/2 of each label, in
 * file order) so validation stays quick.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readGray } from '../core/gray-image.js';
import { GoldenSetError } from './errors.js';

export const GroundTruthFile = Type.Object({
  images: Type.Array(Type.Object({
    file: Type.String({ minLength: 1 }),
    label: Type.Union([Type.Literal('good'), Type.Literal('defect')]),
  }), { minItems: 1 }),
});

export interface GoldenImage {
  file: string;
  label: 'good' | 'defect';
  data: Uint8Array;
}

export interface GoldenSet {
  dir: string;
  width: number;
  height: number;
  images: GoldenImage[];
}

export async function loadGoldenSet(dir: string, frame: { width: number; height: number }, limit: number): Promise<GoldenSet> {
  const abs = resolve(dir);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(abs, 'ground-truth.json'), 'utf8'));
  } catch (err) {
    throw new GoldenSetError(`${abs}/ground-truth.json: ${(err as Error).message}`);
  }
  if (!Value.Check(GroundTruthFile, json)) {
    const e = [...Value.Errors(GroundTruthFile, json)].slice(0, 3).map((x) => `${x.path}: ${x.message}`).join('; ');
    throw new GoldenSetError(`${abs}/ground-truth.json: ${e}`);
  }
  const all = json.images;
  const half = Math.max(1, Math.floor(limit / 2));
  const good = all.filter((i) => i.label === 'good').slice(0, half);
  const defect = all.filter((i) => i.label === 'defect').slice(0, limit - good.length);
  const picked = [...good, ...defect];
  const images: GoldenImage[] = [];
  for (const i of picked) {
    const img = await readGray(join(abs, i.file)).catch((err: Error) => { throw new GoldenSetError(`${i.file}: ${err.message}`); });
    if (img.width !== frame.width || img.height !== frame.height) {
      throw new GoldenSetError(`${i.file} is ${img.width}x${img.height}; the camera delivers ${frame.width}x${frame.height}`);
    }
    images.push({ file: i.file, label: i.label, data: img.data });
  }
  if (!images.some((i) => i.label === 'good') || !images.some((i) => i.label === 'defect')) {
    throw new GoldenSetError(`${abs} needs good and defective images (has ${good.length} good, ${defect.length} defect)`);
  }
  return { dir: abs, width: frame.width, height: frame.height, images };
}
