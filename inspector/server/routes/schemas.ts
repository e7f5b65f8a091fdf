/** TypeBox schemas shared by several routes. */
import { Type } from '@sinclair/typebox';
import { BadRequestError } from '../errors.js';

/** The coded error body every 4xx/5xx carries. */
export const ErrorReply = Type.Object({
  statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String(),
});

/** Standard error responses for a route that needs a login. */
export const authErrors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply } as const;

export const RoleSchema = Type.Union([Type.Literal('operator'), Type.Literal('qa'), Type.Literal('ml'), Type.Literal('admin')]);

export const UserSchema = Type.Object({ name: Type.String(), role: RoleSchema });

export const PartParams = Type.Object({
  runId: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' }),
  seq: Type.Integer({ minimum: 0 }),
});

export const RegionSchema = Type.Union([
  Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), kind: Type.Literal('box'),
    x: Type.Number({ minimum: 0 }), y: Type.Number({ minimum: 0 }), w: Type.Number({ exclusiveMinimum: 0 }), h: Type.Number({ exclusiveMinimum: 0 }) },
  { additionalProperties: false }),
  Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), kind: Type.Literal('polygon'),
    points: Type.Array(Type.Tuple([Type.Number({ minimum: 0 }), Type.Number({ minimum: 0 })]), { minItems: 3, maxItems: 1000 }) },
  { additionalProperties: false }),
]);

export const LabelVerdictSchema = Type.Union([Type.Literal('true_defect'), Type.Literal('false_reject'), Type.Literal('unsure')]);

export const LabelSchema = Type.Object({
  runId: Type.String(), seq: Type.Integer(), revision: Type.Integer(), verdict: LabelVerdictSchema,
  defectClass: Type.Union([Type.String(), Type.Null()]), regions: Type.Array(RegionSchema), by: Type.String(), at: Type.String(),
});

export const PartItemSchema = Type.Object({
  runId: Type.String(), seq: Type.Integer(), capturedAt: Type.String(), capturedAtMs: Type.Number(),
  verdict: Type.Union([Type.Literal('pass'), Type.Literal('reject')]), code: Type.Integer(),
  score: Type.Union([Type.Number(), Type.Null()]), model: Type.Object({ name: Type.String(), version: Type.String(),
    /** the model's defect class of the verdict (results.defect_class); the QA label's class is label.defectClass */
    defectClass: Type.Union([Type.String(), Type.Null()]) }),
  frameToVerdictMs: Type.Union([Type.Number(), Type.Null()]), hasImage: Type.Boolean(), hasMap: Type.Boolean(),
  doubtful: Type.Boolean(), reviewed: Type.Boolean(), label: Type.Union([LabelSchema, Type.Null()]),
});

export const PartRefSchema = Type.Object({ runId: PartParams.properties.runId, seq: PartParams.properties.seq }, { additionalProperties: false });

/** A time bound in a query string: epoch milliseconds or an ISO 8601 date-time. */
export const TimeParam = Type.String({ pattern: '^(\\d{1,15}|\\d{4}-\\d{2}-\\d{2}(T[0-9:.]+(Z|[+-]\\d{2}:?\\d{2})?)?)$', description: 'epoch ms or ISO 8601' });

/** Epoch ms of a TimeParam; an impossible date (2026-13-45) is a coded 400. */
export function parseTime(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw new BadRequestError(`${JSON.stringify(v)} is not a valid time`);
  return ms;
}

/** A binary body (PNG, JPEG) in OpenAPI; Fastify sends Buffers as they are. */
export const BinaryReply = Type.Unsafe<Buffer>({ type: 'string', format: 'binary' });
