/**
 * Coded errors of calibration. Each one says what is wrong with the input and
 * what the installer should do about it; all are 4xx (bad input, nothing lost)
 * except WORKER_GONE (503: the HTTP routes' OpenCV worker died; restart the station).
 */
import createError from '@fastify/error';

export const CalibrationTooFewImagesError = createError<[string]>(
  'INSPECTOR_CALIBRATION_TOO_FEW_IMAGES', 'Too few usable calibration images: %s', 422);
export const CalibrationTooSimilarError = createError<[string]>(
  'INSPECTOR_CALIBRATION_TOO_SIMILAR', 'Calibration images are too similar: %s', 422);
export const CalibrationNoBoardError = createError<[string]>(
  'INSPECTOR_CALIBRATION_NO_BOARD', 'No checkerboard found: %s', 422);
export const CalibrationPoorFitError = createError<[string]>(
  'INSPECTOR_CALIBRATION_POOR_FIT', 'Calibration does not fit the images: %s', 422);
export const CalibrationBadInputError = createError<[string]>(
  'INSPECTOR_CALIBRATION_BAD_INPUT', 'Bad calibration input: %s', 400);
export const CalibrationFileInvalidError = createError<[string, string]>(
  'INSPECTOR_CALIBRATION_FILE_INVALID', 'Calibration file %s is invalid: %s', 422);
export const CalibrationMissingError = createError<[string]>(
  'INSPECTOR_CALIBRATION_MISSING', 'Not calibrated: %s', 409);
export const CalibrationVersionNotFoundError = createError<[string]>(
  'INSPECTOR_CALIBRATION_VERSION_NOT_FOUND', 'Calibration version not found: %s', 404);
export const CalibrationNoReferenceError = createError<[string]>(
  'INSPECTOR_CALIBRATION_NO_REFERENCE', 'No golden reference to register to: %s', 409);
export const CalibrationWorkerGoneError = createError<[string]>(
  'INSPECTOR_CALIBRATION_WORKER_GONE', 'The calibration OpenCV worker is gone: %s', 503);
