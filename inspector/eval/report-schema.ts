/**
 * The JSON that `inspector eval --json FILE` writes, declared as a TypeBox
 * schema (checked before writing, and by the tests).
 */
import { Type, type Static } from '@sinclair/typebox';

const Ratio = Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]);

export const EvalImageRecord = Type.Object({
  id: Type.String(),
  label: Type.Union([Type.Literal('good'), Type.Literal('defect')]),
  defectClass: Type.Union([Type.String(), Type.Null()]),
  width: Type.Integer(),
  height: Type.Integer(),
  score: Type.Number(),
  predictedDefect: Type.Boolean(),
  ms: Type.Number(),
  /** manifest registration: whether the frame registered; null for packages without registration */
  registered: Type.Union([Type.Boolean(), Type.Null()]),
  /** why registration refused the frame (registered false only) */
  registrationReason: Type.Optional(Type.String()),
  regions: Type.Array(Type.Object({
    x: Type.Number(), y: Type.Number(), w: Type.Number(), h: Type.Number(), areaPx: Type.Number(), peak: Type.Number(),
  })),
  /** null when the image has no localised ground truth */
  gtDefects: Type.Union([Type.Integer(), Type.Null()]),
  gtHit: Type.Union([Type.Integer(), Type.Null()]),
  falseRegions: Type.Union([Type.Integer(), Type.Null()]),
});
export type EvalImageRecord = Static<typeof EvalImageRecord>;

export const EvalReport = Type.Object({
  schemaVersion: Type.Literal(1),
  model: Type.Object({
    /** package folder, or 'per-pair teach' */
    source: Type.String(),
    name: Type.String(),
    version: Type.String(),
    kind: Type.String(),
    threshold: Type.Number(),
    minDefectAreaPx: Type.Number(),
    registration: Type.Union([Type.Literal('none'), Type.Literal('applied'), Type.Literal('not applied')]),
  }),
  dataset: Type.Object({
    root: Type.String(),
    layout: Type.String(),
    split: Type.Union([Type.String(), Type.Null()]),
    images: Type.Integer(),
    good: Type.Integer(),
    defective: Type.Integer(),
    classes: Type.Array(Type.String()),
    teachPerPair: Type.Boolean(),
    /** items left out (see `skipped`): `images` counts the judged ones only */
    skipped: Type.Integer({ minimum: 0 }),
  }),
  image_auroc: Ratio,
  threshold: Type.Number(),
  precision: Ratio,
  recall: Ratio,
  f1: Ratio,
  accuracy: Ratio,
  false_reject_rate: Ratio,
  /** frames the package's registration refused (rejected unscored, as on the station) */
  unregistrable: Type.Integer({ minimum: 0 }),
  /** which frames, and the registrar's reason */
  unregistrable_items: Type.Array(Type.Object({ item: Type.String(), reason: Type.String() })),
  /**
   * items that could not be evaluated and are in no metric: a pair whose template could not be taught
   * (INSPECTOR_TEACH_NO_IMAGES: not registrable; INSPECTOR_TEACH_IMAGE_SIZE), an image that does not
   * decode (INSPECTOR_EVAL_IMAGE); the run went on without them
   */
  skipped: Type.Array(Type.Object({ item: Type.String(), code: Type.String(), reason: Type.String() })),
  /** score-only thresholds for recalls 0.99 / 0.95 / 0.90 and the false-reject rate each costs (metrics.ts) */
  operating_points: Type.Array(Type.Object({
    target_recall: Type.Number(), threshold: Type.Number(), recall: Type.Number(), false_reject_rate: Ratio,
  })),
  confusion_matrix: Type.Object({ tp: Type.Integer(), fp: Type.Integer(), tn: Type.Integer(), fn: Type.Integer() }),
  per_class_recall: Type.Record(Type.String(), Type.Object({ recall: Type.Number(), detected: Type.Integer(), total: Type.Integer() })),
  latency_ms: Type.Object({ p50: Type.Number(), p99: Type.Number(), runs: Type.Integer() }),
  /** share of ground-truth defects (boxes / mask components) overlapped by a predicted region; null without localised GT */
  defect_region_recall: Ratio,
  /** predicted regions overlapping no ground-truth defect, per image with localised GT (good images included) */
  false_regions_per_image: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  regions: Type.Object({
    images: Type.Integer(),
    gt_defects: Type.Integer(),
    gt_hit: Type.Integer(),
    predicted: Type.Integer(),
    false: Type.Integer(),
    per_class_recall: Type.Record(Type.String(), Type.Object({ recall: Type.Number(), hit: Type.Integer(), total: Type.Integer() })),
  }),
  /** per-pair teach: the options the pairs were taught with (manifest training.teach.options) and how many pairs each */
  teach_options: Type.Optional(Type.Array(Type.Object({ options: Type.Record(Type.String(), Type.Unknown()), pairs: Type.Integer() }))),
  seconds: Type.Number(),
  command: Type.String(),
  per_image: Type.Optional(Type.Array(EvalImageRecord)),
});
export type EvalReport = Static<typeof EvalReport>;
