/** Coded errors of the model registry and its lifecycle (HTTP status in the third argument). */
import createError from '@fastify/error';

export const ModelNotFoundError = createError<[string]>(
  'INSPECTOR_MODEL_NOT_FOUND', 'No model %s in the registry', 404);
export const ModelExistsError = createError<[string]>(
  'INSPECTOR_MODEL_EXISTS', 'Model %s is already in the registry (packages are immutable: push a new version)', 409);
export const ModelInUseError = createError<[string, string]>(
  'INSPECTOR_MODEL_IN_USE', 'Model %s is %s and cannot be deleted', 409);
export const ModelValidationFailedError = createError<[string, string]>(
  'INSPECTOR_MODEL_VALIDATION_FAILED', 'Model %s refused by the validation gate (the live model is unchanged): %s', 422);
export const NoPreviousModelError = createError<[string]>(
  'INSPECTOR_MODEL_NO_PREVIOUS', 'Nothing to roll back to: %s', 409);
export const LifecycleBusyError = createError<[string]>(
  'INSPECTOR_MODEL_LIFECYCLE_BUSY', 'Another model operation is running: %s', 409);
export const NoShadowError = createError<[string]>(
  'INSPECTOR_MODEL_NO_SHADOW', 'No shadow model: %s', 409);
export const ModelUploadInvalidError = createError<[string]>(
  'INSPECTOR_MODEL_UPLOAD_INVALID', 'Model upload refused: %s', 400);
/** a multipart part whose name is path-like, repeated, or not a file the manifest lists: nothing is stored */
export const UploadNameError = createError<[string]>(
  'INSPECTOR_UPLOAD_NAME', 'Model upload refused: %s', 400);
export const GoldenSetError = createError<[string]>(
  'INSPECTOR_GOLDEN_SET', 'Golden set unusable: %s', 500);
export const RegistryStateError = createError<[string]>(
  'INSPECTOR_REGISTRY_STATE', 'Registry state file unusable: %s', 500);
