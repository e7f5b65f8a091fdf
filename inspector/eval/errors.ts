/**
 * Coded errors of `inspector eval` (bad input is a 4xx-class code, never a crash).
 */
import createError from '@fastify/error';

export const EvalDatasetError = createError<[string]>(
  'INSPECTOR_EVAL_DATASET', 'Dataset cannot be read: %s', 400);
export const EvalLayoutUnknownError = createError<[string]>(
  'INSPECTOR_EVAL_LAYOUT_UNKNOWN', 'Dataset layout not recognised: %s', 400);
export const EvalEmptyError = createError<[string]>(
  'INSPECTOR_EVAL_EMPTY', 'Nothing to evaluate: %s', 400);
export const EvalOptionError = createError<[string]>(
  'INSPECTOR_EVAL_OPTION', 'Invalid eval option: %s', 400);
export const EvalTeachUnavailableError = createError<[string]>(
  'INSPECTOR_EVAL_TEACH_UNAVAILABLE', 'Per-pair teaching is not available: %s', 501);
export const EvalImageError = createError<[string]>(
  'INSPECTOR_EVAL_IMAGE', 'Image cannot be read: %s', 400);
