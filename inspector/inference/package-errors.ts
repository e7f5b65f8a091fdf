/**
 * Coded errors of the package contract v2 that core/errors.ts does not have
 * (the older package codes live there: MISSING, MANIFEST_INVALID,
 * HASH_MISMATCH, MALFORMED, CONTRACT_MISMATCH, OUTPUT_INVALID).
 */
import createError from '@fastify/error';

/** No provider of the configured list can run an operator (or opset/domain) of the graph. */
export const ModelUnsupportedOpError = createError<[string]>(
  'INSPECTOR_MODEL_UNSUPPORTED_OP', 'Model uses operators the execution provider cannot run: %s', 422);
