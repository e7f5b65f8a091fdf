/**
 * Data shapes of dataset export, as TypeBox schemas: the filter (HTTP body,
 * CLI flags), label regions as the review database stores them, and the
 * on-disk `manifest.json` of an export.
 */
import { Type, type Static } from '@sinclair/typebox';

export const EXPORT_FORMATS = ['mvtec', 'coco', 'yolo'] as const;
export const ExportFormat = Type.Union(EXPORT_FORMATS.map((f) => Type.Literal(f)));
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const LabelVerdict = Type.Union([Type.Literal('true_defect'), Type.Literal('false_reject'), Type.Literal('unsure')]);
export type LabelVerdict = Static<typeof LabelVerdict>;

/** Which parts go into an export. Every field narrows; absent fields do not. */
export const ExportFilter = Type.Object({
  /** captured_at_ms >= from (epoch ms) */
  from: Type.Optional(Type.Integer({ minimum: 0 })),
  /** captured_at_ms < to (epoch ms) */
  to: Type.Optional(Type.Integer({ minimum: 0 })),
  /** the model's verdict */
  verdict: Type.Optional(Type.Union([Type.Literal('pass'), Type.Literal('reject')])),
  /** the reviewer's verdict ('unsure' is never exported) */
  label: Type.Optional(Type.Union([Type.Literal('true_defect'), Type.Literal('false_reject')])),
  /** defect classes to keep (good parts are kept whatever the class filter) */
  classes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 64 })),
  modelName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  modelVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  runId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** default true; false also exports unlabelled passes as good (unlabelled rejects are skipped and counted) */
  labelledOnly: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type ExportFilter = Static<typeof ExportFilter>;

const Point = Type.Tuple([Type.Number(), Type.Number()]);
export const BoxRegion = Type.Object({
  id: Type.String(), kind: Type.Literal('box'),
  x: Type.Number(), y: Type.Number(), w: Type.Number({ minimum: 0 }), h: Type.Number({ minimum: 0 }),
});
export const PolygonRegion = Type.Object({
  id: Type.String(), kind: Type.Literal('polygon'), points: Type.Array(Point, { minItems: 3 }),
});
export const Region = Type.Union([BoxRegion, PolygonRegion]);
export type Region = Static<typeof Region>;
export const Regions = Type.Array(Region);

export const ManifestFile = Type.Object({ path: Type.String(), bytes: Type.Integer(), sha256: Type.String() });
export type ManifestFile = Static<typeof ManifestFile>;

export const ExportCounts = Type.Object({
  images: Type.Integer(),
  good: Type.Integer(),
  defect: Type.Record(Type.String(), Type.Integer()),
  annotations: Type.Integer(),
  /** labelled 'unsure': never exported */
  excludedUnsure: Type.Integer(),
  /** labelledOnly=false: rejects nobody labelled are skipped */
  skippedUnlabelledRejects: Type.Integer(),
  /** the result row names an image that is not on disk */
  missingImages: Type.Integer(),
  /** 'true_defect' labels without a drawn region (exported, empty mask / no annotation) */
  defectsWithoutRegions: Type.Integer(),
});
export type ExportCounts = Static<typeof ExportCounts>;

/** `manifest.json` of an export: no timestamps, so the same selection gives the same bytes. */
export const ExportManifest = Type.Object({
  version: Type.Literal(1),
  format: ExportFormat,
  filter: ExportFilter,
  classes: Type.Array(Type.String()),
  counts: ExportCounts,
  items: Type.Array(Type.Object({
    runId: Type.String(), seq: Type.Integer(), file: Type.String(),
    label: Type.Union([LabelVerdict, Type.Null()]), labelRevision: Type.Union([Type.Integer(), Type.Null()]),
    defectClass: Type.Union([Type.String(), Type.Null()]),
  })),
  files: Type.Array(ManifestFile),
});
export type ExportManifest = Static<typeof ExportManifest>;

export const ExportRequest = Type.Object({
  format: ExportFormat,
  filter: Type.Optional(ExportFilter),
}, { additionalProperties: false });
export type ExportRequest = Static<typeof ExportRequest>;
