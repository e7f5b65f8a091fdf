/**
 * Coded HTTP errors of the server and the review API. Every error a client can
 * see carries an INSPECTOR_* code; bad input is a 4xx, never a 500.
 */
import createError from '@fastify/error';

export const UnauthenticatedError = createError<[string]>(
  'INSPECTOR_UNAUTHENTICATED', 'Login required: %s', 401);
export const ForbiddenError = createError<[string, string]>(
  'INSPECTOR_FORBIDDEN', 'Role %s may not do this (needs %s)', 403);
export const BadCredentialsError = createError(
  'INSPECTOR_BAD_CREDENTIALS', 'Unknown user or wrong password', 401);
export const BadRequestError = createError<[string]>(
  'INSPECTOR_BAD_REQUEST', '%s', 400);
export const NotFoundError = createError<[string]>(
  'INSPECTOR_NOT_FOUND', '%s not found', 404);
export const UserExistsError = createError<[string]>(
  'INSPECTOR_USER_EXISTS', 'User %s already exists', 409);
export const LabelConflictError = createError<[string, number, number]>(
  'INSPECTOR_LABEL_CONFLICT', 'Label of %s changed meanwhile: you sent revision %d, the current one is %d', 409);
export const UnknownClassError = createError<[string]>(
  'INSPECTOR_UNKNOWN_CLASS', 'Defect class %s is not in the station class list', 400);
export const ResultsUnavailableError = createError<[string]>(
  'INSPECTOR_RESULTS_UNAVAILABLE', 'Results database is not available: %s', 503);
export const ImageMissingError = createError<[string]>(
  'INSPECTOR_IMAGE_MISSING', 'No image for %s', 404);
export const PathOutsideError = createError<[string]>(
  'INSPECTOR_PATH_OUTSIDE', 'Path %s is outside the images folder', 400);
export const UiMissingError = createError<[string]>(
  'INSPECTOR_UI_MISSING', 'The UI is not built: %s', 503);
export const TooManyLoginsError = createError<[number]>(
  'INSPECTOR_TOO_MANY_LOGINS', 'Too many login attempts; try again in %d s', 429);
