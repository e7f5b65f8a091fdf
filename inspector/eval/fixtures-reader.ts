/**
 * The synthetic fixtures' layout (`test-images/{train,test}`): parts/, masks/
 * and ground-truth.json ({ images: [{ file, label, defect, bbox, mask }] },
 * bbox = [x1, y1, x2, y2]). The file is validated with a TypeBox schema.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { EvalDatasetError } from './errors.js';
import type { EvalItem } from './dataset-types.js';

export const GroundTruthFile = Type.Object({
  width: Type.Optional(Type.Integer({ minimum: 1 })),
  height: Type.Optional(Type.Integer({ minimum: 1 })),
  images: Type.Array(Type.Object({
    file: Type.String({ minLength: 1 }),
    label: Type.Union([Type.Literal('good'), Type.Literal('defect')]),
    defect: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    bbox: Type.Union([Type.Tuple([Type.Number(), Type.Number(), Type.Number(), Type.Number()]), Type.Null()]),
    mask: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  })),
});
export type GroundTruthFile = Static<typeof GroundTruthFile>;

export const GROUND_TRUTH_FILE = 'ground-truth.json';

export async function readFixtures(root: string): Promise<EvalItem[]> {
  const path = join(root, GROUND_TRUTH_FILE);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new EvalDatasetError(`${path}: ${(err as Error).message}`);
  }
  if (!Value.Check(GroundTruthFile, json)) {
    const first = [...Value.Errors(GroundTruthFile, json)][0];
    throw new EvalDatasetError(`${path}: ${first?.path ?? '/'} ${first?.message ?? 'invalid'}`);
  }
  return json.images.map((im) => ({
    id: im.file, image: join(root, im.file), label: im.label, defectClass: im.label === 'defect' ? im.defect ?? 'defect' : null,
    mask: im.mask ? join(root, im.mask) : null,
    boxes: im.bbox ? [{ x1: im.bbox[0], y1: im.bbox[1], x2: im.bbox[2], y2: im.bbox[3], defectClass: im.defect }] : im.label === 'good' ? [] : null,
  }));
}
