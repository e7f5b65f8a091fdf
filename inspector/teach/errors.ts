/** Coded errors of teaching (`inspector teach`, teachPackage). */
import createError from '@fastify/error';

export const TeachNoImagesError = createError<[string]>(
  'INSPECTOR_TEACH_NO_IMAGES', 'No good images to teach from: %s', 400);
export const TeachImageSizeError = createError<[string]>(
  'INSPECTOR_TEACH_IMAGE_SIZE', 'Good images do not fit the model geometry: %s', 400);
export const TeachOptionsInvalidError = createError<[string]>(
  'INSPECTOR_TEACH_OPTIONS_INVALID', 'Teach options are invalid: %s', 400);
