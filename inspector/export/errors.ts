/**
 * Coded errors of dataset export. Bad input is a 4xx with a code.
 */
import createError from '@fastify/error';

export const ExportBadFilterError = createError<[string]>(
  'INSPECTOR_EXPORT_BAD_FILTER', 'Export filter is invalid: %s', 400);
export const ExportOutExistsError = createError<[string]>(
  'INSPECTOR_EXPORT_OUT_EXISTS', 'Export folder %s exists and is not empty', 409);
export const ExportNotFoundError = createError<[string]>(
  'INSPECTOR_EXPORT_NOT_FOUND', 'Export %s not found', 404);
export const ExportNotReadyError = createError<[string, string]>(
  'INSPECTOR_EXPORT_NOT_READY', 'Export %s is %s, not done', 409);
export const ExportFileNotFoundError = createError<[string]>(
  'INSPECTOR_EXPORT_FILE_NOT_FOUND', 'Export file %s not found', 404);
export const ExportFailedError = createError<[string]>(
  'INSPECTOR_EXPORT_FAILED', 'Export failed: %s', 500);
export const ExportBusyError = createError<[number]>(
  'INSPECTOR_EXPORT_BUSY', 'Too many exports running (%d); try again when one is done', 429);
export const ExportUnavailableError = createError<[string]>(
  'INSPECTOR_EXPORT_UNAVAILABLE', 'Export is not available: %s', 503);
export const ExportGoneError = createError<[string, string]>(
  'INSPECTOR_EXPORT_GONE', 'Export %s is done but its folder %s is gone or unreadable', 410);
