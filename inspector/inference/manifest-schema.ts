/**
 * The model package contract, declared as data (TypeBox → JSON Schema).
 *
 * A package is a folder holding `model.onnx` and `manifest.json`. The manifest
 * carries everything needed to score a frame the same way the model was
 * trained: input geometry, colour, resize mode, normalisation, the outputs and
 * the decision rule. The appliance compiles the preprocessing into the ONNX
 * session (see preprocess-graph.ts), so there is one implementation of it.
 */
import { Type, type Static } from '@sinclair/typebox';

export const MANIFEST_SCHEMA_VERSION = 1;

const TensorShape = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 6 });

export const ManifestInput = Type.Object({
  name: Type.String({ minLength: 1, description: 'graph input name' }),
  shape: Type.Tuple([Type.Literal(1), Type.Integer({ minimum: 1, maximum: 4 }), Type.Integer({ minimum: 8 }), Type.Integer({ minimum: 8 })],
    { description: 'N,C,H,W of the model input after preprocessing' }),
  dtype: Type.Literal('float32'),
  layout: Type.Literal('NCHW'),
  colour: Type.Union([Type.Literal('gray'), Type.Literal('rgb')]),
  resize: Type.Union([Type.Literal('area'), Type.Literal('linear')],
    { description: 'area: box average (integer factors); linear: bilinear' }),
  normalisation: Type.Object({
    scale: Type.Number({ exclusiveMinimum: 0, description: 'multiplies raw 0..255 pixels first' }),
    mean: Type.Array(Type.Number(), { minItems: 1, maxItems: 4 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, maxItems: 4 }),
  }, { description: 'x = (pixel * scale - mean) / std, per channel' }),
}, { additionalProperties: false });

export const ManifestOutputs = Type.Object({
  kind: Type.Literal('anomaly_map', { description: 'per-pixel defect probability map plus an image score' }),
  score: Type.Object({ name: Type.String({ minLength: 1 }), shape: TensorShape }, { additionalProperties: false }),
  map: Type.Object({ name: Type.String({ minLength: 1 }), shape: TensorShape }, { additionalProperties: false }),
  classes: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  defectClasses: Type.Array(Type.String({ minLength: 1 })),
}, { additionalProperties: false });

export const ManifestDecision = Type.Object({
  threshold: Type.Number({ minimum: 0, maximum: 1, description: 'score >= threshold rejects' }),
  minDefectAreaPx: Type.Integer({ minimum: 0, description: 'reserved: minimum defect area in frame pixels' }),
}, { additionalProperties: false });

export const Manifest = Type.Object({
  schemaVersion: Type.Literal(MANIFEST_SCHEMA_VERSION),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' }),
  version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }),
  description: Type.Optional(Type.String()),
  input: ManifestInput,
  outputs: ManifestOutputs,
  decision: ManifestDecision,
  training: Type.Object({
    data: Type.String({ description: 'where the training data came from' }),
    script: Type.String(),
    command: Type.String(),
    metrics: Type.Optional(Type.Record(Type.String(), Type.Number())),
  }, { additionalProperties: true }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of model.onnx' }),
}, { additionalProperties: false });

export type Manifest = Static<typeof Manifest>;
