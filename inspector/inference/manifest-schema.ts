/**
 * The model package contract, declared as data (TypeBox → JSON Schema).
 *
 * A package is a folder holding `model.onnx`, `manifest.json` and any extra
 * files the manifest lists (`files`, each hashed in `sha256s`). The manifest
 * carries everything needed to score a frame the same way the model was
 * trained: input geometry, colour, resize mode, normalisation, the outputs and
 * the decision rule. The appliance compiles the preprocessing into the ONNX
 * session (see preprocess-graph.ts), so there is one implementation of it.
 *
 * Two schema versions are loadable:
 *  - 1: anomaly_map only (score + map), one threshold.
 *  - 2 (current): kinds anomaly_map | segmentation | classification, per-class
 *    thresholds, optional registration to a reference image, extra files.
 * Both parse into the one `Manifest` type below (v1 is a subset of v2).
 */
import { Type, type Static } from '@sinclair/typebox';

/** The version new packages are written with. */
export const MANIFEST_SCHEMA_VERSION = 2;
export const MANIFEST_SCHEMA_VERSIONS = [1, 2] as const;

const TensorShape = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 6 });
const TensorSpec = Type.Object({ name: Type.String({ minLength: 1 }), shape: TensorShape }, { additionalProperties: false });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** a plain file name inside the package folder (no folders, no dot files) */
const PackageFileName = Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', maxLength: 128 });

export const ManifestInput = Type.Object({
  name: Type.String({ minLength: 1, description: 'graph input name' }),
  shape: Type.Tuple([Type.Literal(1), Type.Integer({ minimum: 1, maximum: 4 }), Type.Integer({ minimum: 8 }), Type.Integer({ minimum: 8 })],
    { description: 'N,C,H,W of the model input after preprocessing' }),
  dtype: Type.Literal('float32'),
  layout: Type.Literal('NCHW'),
  colour: Type.Union([Type.Literal('gray'), Type.Literal('rgb')]),
  resize: Type.Union([Type.Literal('area'), Type.Literal('linear'), Type.Literal('letterbox')],
    { description: 'area: box average (integer factors); linear: bilinear; letterbox: bilinear keeping the aspect ratio, centred, padded with the image mean' }),
  normalisation: Type.Object({
    scale: Type.Number({ exclusiveMinimum: 0, description: 'multiplies raw 0..255 pixels first' }),
    mean: Type.Array(Type.Number(), { minItems: 1, maxItems: 4 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, maxItems: 4 }),
  }, { description: 'x = (pixel * scale - mean) / std, per channel' }),
}, { additionalProperties: false });

const Classes = Type.Array(Type.String({ minLength: 1 }), { minItems: 1 });
const DefectClasses = Type.Array(Type.String({ minLength: 1 }));

export const OutputKind = Type.Union([Type.Literal('anomaly_map'), Type.Literal('segmentation'), Type.Literal('classification')]);
export type OutputKind = Static<typeof OutputKind>;

/** v1 outputs: an anomaly map and a score. */
export const ManifestOutputsV1 = Type.Object({
  kind: Type.Literal('anomaly_map', { description: 'per-pixel defect probability map plus an image score' }),
  score: TensorSpec,
  map: TensorSpec,
  classes: Classes,
  defectClasses: DefectClasses,
}, { additionalProperties: false });

/**
 * v2 outputs. Every kind has `score` (image-level defect score in 0..1, the
 * decision uses it). anomaly_map: `map` [1,1,h,w]; segmentation: `map`
 * [1,K,h,w] (K = classes) or [1,1,h,w]; classification: `probabilities` [1,K], no map.
 */
export const ManifestOutputs = Type.Object({
  kind: OutputKind,
  score: TensorSpec,
  map: Type.Optional(TensorSpec),
  probabilities: Type.Optional(TensorSpec),
  classes: Classes,
  defectClasses: DefectClasses,
}, { additionalProperties: false });

export const ManifestDecisionV1 = Type.Object({
  threshold: Type.Number({ minimum: 0, maximum: 1, description: 'score >= threshold rejects' }),
  minDefectAreaPx: Type.Integer({ minimum: 0, description: 'minimum defect area in frame pixels; 0 = off' }),
}, { additionalProperties: false });

export const ManifestDecision = Type.Object({
  threshold: Type.Number({ minimum: 0, maximum: 1, description: 'score >= threshold rejects' }),
  classThresholds: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Number({ minimum: 0, maximum: 1 }),
    { description: 'per defect class: probability >= threshold rejects (names must be in outputs.classes)' })),
  minDefectAreaPx: Type.Integer({ minimum: 0, description: 'minimum defect area in frame pixels; 0 = off' }),
}, { additionalProperties: false });

export const ManifestRegistration = Type.Object({
  reference: PackageFileName,
  maxShiftPx: Type.Number({ minimum: 0 }),
  maxRotationDeg: Type.Number({ minimum: 0 }),
  minQuality: Type.Number({ minimum: 0, maximum: 1 }),
}, { additionalProperties: false, description: 'register each frame to the reference (a PNG in the package at the model input size)' });

export const ManifestTraining = Type.Object({
  data: Type.String({ description: 'where the training data came from' }),
  script: Type.String(),
  command: Type.String(),
  metrics: Type.Optional(Type.Record(Type.String(), Type.Number())),
}, { additionalProperties: true });

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', maxLength: 64 });
const Version = Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$', maxLength: 32 });

export const ManifestV1 = Type.Object({
  schemaVersion: Type.Literal(1),
  name: Name,
  version: Version,
  description: Type.Optional(Type.String()),
  input: ManifestInput,
  outputs: ManifestOutputsV1,
  decision: ManifestDecisionV1,
  training: ManifestTraining,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of model.onnx' }),
}, { additionalProperties: false });

export const ManifestV2 = Type.Object({
  schemaVersion: Type.Literal(2),
  name: Name,
  version: Version,
  description: Type.Optional(Type.String()),
  input: ManifestInput,
  outputs: ManifestOutputs,
  decision: ManifestDecision,
  registration: Type.Optional(ManifestRegistration),
  training: ManifestTraining,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of model.onnx' }),
  files: Type.Optional(Type.Array(PackageFileName, { maxItems: 32, description: 'extra files in the package' })),
  sha256s: Type.Optional(Type.Record(Type.String(), Sha256, { description: 'sha256 of each extra file' })),
}, { additionalProperties: false });

/** Schemas by version, for validation (pick by `schemaVersion`, then check: clearer errors than a union). */
export const MANIFEST_SCHEMAS = { 1: ManifestV1, 2: ManifestV2 } as const;

/** Every loadable manifest, as a JSON Schema (the union of the versions). */
export const ManifestDocument = Type.Union([ManifestV1, ManifestV2]);

/** The parsed manifest: v2's shape; a v1 manifest is a valid value of it (with schemaVersion 1). */
export type Manifest = Omit<Static<typeof ManifestV2>, 'schemaVersion'> & { schemaVersion: 1 | 2 };
/** The schema of a loadable manifest (any version); `Manifest` the type is the parsed value. */
export const Manifest = ManifestDocument;
