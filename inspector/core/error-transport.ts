/**
 * Coded errors across a thread boundary: a worker sends `toErrorData(err)`,
 * the other side re-creates the same class (when known), code and message
 * with `reviveError`.
 */
import * as codedErrors from './errors.js';

export interface CodedErrorData { code: string; message: string; stack?: string }

type CodedCtor = new () => Error & { code: string };
const CTOR_BY_CODE = new Map<string, CodedCtor>();
for (const v of Object.values(codedErrors)) {
  if (typeof v !== 'function' || v === codedErrors.describeError) continue;
  const ctor = v as unknown as CodedCtor;
  CTOR_BY_CODE.set(new ctor().code, ctor);
}

export function toErrorData(err: unknown): CodedErrorData {
  const { code, message } = codedErrors.describeError(err);
  return { code, message, ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) };
}

/** Re-create a worker's error on this thread: same class (when known), code and message. */
export function reviveError(data: CodedErrorData, where = 'a worker'): Error & { code: string } {
  const Ctor = CTOR_BY_CODE.get(data.code);
  const err = (Ctor ? new Ctor() : Object.assign(new Error(), { code: data.code })) as Error & { code: string };
  err.message = data.message;
  if (data.stack) err.stack = `${err.name} [${data.code}]: ${data.message}\n    --- in ${where} ---\n${data.stack.split('\n').slice(1).join('\n')}`;
  return err;
}
