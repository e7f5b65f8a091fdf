/**
 * Coded errors for the whole appliance.
 *
 * Every error that can reach an operator, a log line, an HTTP client or a CLI
 * exit carries a stable `code` (INSPECTOR_*), built with @fastify/error so the
 * HTTP layer maps them to status codes without a translation table.
 */
import createError from '@fastify/error';

export const ModelPackageMissingError = createError<[string]>(
  'INSPECTOR_MODEL_PACKAGE_MISSING', 'Model package incomplete: %s', 500);
export const ModelManifestInvalidError = createError<[string, string]>(
  'INSPECTOR_MODEL_MANIFEST_INVALID', 'Model manifest %s is invalid: %s', 500);
export const ModelHashMismatchError = createError<[string, string, string]>(
  'INSPECTOR_MODEL_HASH_MISMATCH', 'Model file %s has sha256 %s but the manifest declares %s', 500);
export const ModelMalformedError = createError<[string, string]>(
  'INSPECTOR_MODEL_MALFORMED', 'Model file %s cannot be loaded: %s', 500);
export const ModelContractMismatchError = createError<[string]>(
  'INSPECTOR_MODEL_CONTRACT_MISMATCH', 'Model graph does not match its manifest: %s', 500);
export const ModelOutputInvalidError = createError<[string]>(
  'INSPECTOR_MODEL_OUTPUT_INVALID', 'Model produced invalid output: %s', 500);
export const NoExecutionProviderError = createError<[string]>(
  'INSPECTOR_NO_EXECUTION_PROVIDER', 'No execution provider could load the model: %s', 500);
/** Signed model packages (registry/signing.ts): refused before anything loads, 422 over HTTP. */
export const ModelUnsignedError = createError<[string]>(
  'INSPECTOR_MODEL_UNSIGNED', 'Model package %s is not signed (no signature.json) and this station requires signatures', 422);
export const ModelSignatureInvalidError = createError<[string, string]>(
  'INSPECTOR_MODEL_SIGNATURE_INVALID', 'Model package %s: the signature does not hold: %s', 422);
export const ModelKeyUnknownError = createError<[string, string]>(
  'INSPECTOR_MODEL_KEY_UNKNOWN', 'Model package %s is signed by key %s, which this station does not trust (registry.trustedKeys)', 422);
/** a signing key (private, or a trusted public key of the config) that cannot be used */
export const SigningKeyInvalidError = createError<[string, string]>(
  'INSPECTOR_SIGNING_KEY_INVALID', 'Signing key %s is unusable: %s', 500);
export const FrameShapeMismatchError = createError<[string]>(
  'INSPECTOR_FRAME_SHAPE_MISMATCH', 'Frame does not match the model input: %s', 500);

export const InferenceBusyError = createError<[string]>(
  'INSPECTOR_INFERENCE_BUSY', 'Inference already in flight: %s', 503);
export const InferenceWorkerExitedError = createError<[string]>(
  'INSPECTOR_INFERENCE_WORKER_EXITED', 'Inference worker is gone: %s', 503);
export const InferenceClosedError = createError<[string]>(
  'INSPECTOR_INFERENCE_CLOSED', 'Model runner is closed: %s', 503);
/** infer() got no answer within the runner's deadlineMs: the part is a fail-safe reject (ResultCode INFERENCE_TIMEOUT) */
export const InferenceTimeoutError = createError<[string]>(
  'INSPECTOR_INFERENCE_TIMEOUT', 'Inference missed its deadline: %s', 503);
/** a supervised worker (core/supervised-worker.ts) did not complete its ready handshake */
export const WorkerStartError = createError<[string, string]>(
  'INSPECTOR_WORKER_START', 'The %s worker failed to start: %s', 503);

export const PipelineTemplateError = createError<[string]>(
  'INSPECTOR_PIPELINE_TEMPLATE', 'Pipeline template error: %s', 500);
export const CaptureError = createError<[string]>(
  'INSPECTOR_CAPTURE', 'Camera pipeline error: %s', 500);

export const ConfigInvalidError = createError<[string]>(
  'INSPECTOR_CONFIG_INVALID', 'Configuration is invalid: %s', 500);

export const PlcWriteError = createError<[string]>(
  'INSPECTOR_PLC_WRITE', 'PLC write failed: %s', 502);
/**
 * The PLC link's OPC UA security refused a connection: the PLC's certificate is not trusted,
 * explicitly rejected or expired, the configured security policy is not offered, the PLC refused
 * the station's certificate or the user. The link's lastError and the PLC_LINK_DOWN alarm carry it.
 */
export const PlcSecurityError = createError<[string]>(
  'INSPECTOR_PLC_SECURITY', 'PLC link security: %s', 502);

/** Narrow an unknown thrown value to something with a code and message. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'INSPECTOR_UNEXPECTED', message: err.message };
  }
  return { code: 'INSPECTOR_UNEXPECTED', message: String(err) };
}
