/**
 * Execution-provider preference with fallback.
 *
 * The preference list comes from config, e.g. ['tensorrt', 'cuda', 'webgpu', 'cpu'].
 * Each provider is tried alone, in order; a failure is logged (warn) and
 * recorded as a fallback, and the next one is tried.
 *
 * A provider can also "succeed" and place nothing on its device: ONNX Runtime
 * silently assigns nodes the EP does not take to the CPU EP. For every
 * non-CPU provider the session is therefore profiled once (one run on zero
 * inputs) and the node placement read back from the profile; a session with
 * no node on the requested device is treated as a fallback (reason says so),
 * a partial placement is logged at info.
 *
 * What each provider does on the reference machine (no GPU, no CUDA libs):
 *   tensorrt, cuda: throw "…Failed to load shared library" in ~1 ms. ONNX Runtime's default
 *                   logger also printed a red `[E:onnxruntime] … Failed to load library` line
 *                   per attempt: the session option `logSeverityLevel` does not reach it (the
 *                   provider bridge logs through the process-wide environment), `ort.env.logLevel`
 *                   does, if set before the first session of the process: it is 'fatal' here
 *                   (INSPECTOR_ORT_LOG_LEVEL overrides; every ORT error still arrives as the
 *                   thrown error, with its message).
 *   webgpu:         throws "Failed to get a WebGPU adapter: No supported adapters" after
 *                   ~25 ms (Dawn prints "Couldn't load Vulkan: libvulkan.so.1" to stderr).
 * A provider that is simply absent from this machine (those two errors) is not a fault: they are
 * summed up in ONE info line once a provider works; any other failure is a warning.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { ConfigInvalidError, NoExecutionProviderError } from '../core/errors.js';

const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;
const wanted = process.env.INSPECTOR_ORT_LOG_LEVEL;
ort.env.logLevel = (ORT_LOG_LEVELS as readonly string[]).includes(wanted ?? '') ? wanted as typeof ORT_LOG_LEVELS[number] : 'fatal';

/** The errors of a provider whose libraries or device this machine does not have (not a fault). */
export function providerAbsent(reason: string): boolean {
  return /Failed to load shared library|Failed to get a WebGPU adapter|No supported adapters/i.test(reason);
}

export const KNOWN_PROVIDERS = ['tensorrt', 'cuda', 'webgpu', 'cpu'] as const;
export type ProviderName = (typeof KNOWN_PROVIDERS)[number];

export interface ProviderFallback {
  provider: ProviderName;
  reason: string;
}

export interface SessionWithProvider {
  session: InferenceSession;
  provider: ProviderName;
  fallbacks: ProviderFallback[];
  /** node count per ORT execution provider, when the placement was profiled (non-CPU providers) */
  placement?: Record<string, number>;
}

/** What this module logs: satisfied by a pino logger, and by a forwarding shim in workers. */
export interface MinimalLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface CreateSessionOptions {
  providers: readonly string[];
  intraOpNumThreads: number;
  logger: MinimalLogger;
  /** profile non-CPU sessions to detect a silent fallback to CPU (default true) */
  verifyPlacement?: boolean;
  /** extra session options merged over the defaults (tests, tuning) */
  sessionOptions?: InferenceSession.SessionOptions;
  /** another model for one provider: TensorRT's cached engine as an EP context model (trt-engine-cache.ts) */
  modelFor?: Partial<Record<ProviderName, Uint8Array>>;
}

/** Validate a provider preference list; throws ConfigInvalidError. */
export function validateProviders(list: unknown): ProviderName[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigInvalidError('model.providers must be a non-empty list of execution providers');
  }
  const out: ProviderName[] = [];
  for (const p of list) {
    if (typeof p !== 'string' || !(KNOWN_PROVIDERS as readonly string[]).includes(p)) {
      throw new ConfigInvalidError(`unknown execution provider '${String(p)}' (known: ${KNOWN_PROVIDERS.join(', ')})`);
    }
    if (out.includes(p as ProviderName)) throw new ConfigInvalidError(`execution provider '${p}' is listed twice`);
    out.push(p as ProviderName);
  }
  return out;
}

/** The ORT provider name the profiler reports for our names. */
const ORT_EP_NAME: Record<ProviderName, string> = {
  tensorrt: 'TensorrtExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cpu: 'CPUExecutionProvider',
};

/**
 * Default session options. With more than one intra-op thread the pool
 * threads do NOT spin-wait between runs (`session.intra_op.allow_spinning=0`):
 * on a 2-core box spinning threads steal the CPU that capture and the main
 * thread need, and measured tails got worse (see the report in the tests).
 * A caller's `sessionOptions.extra` replaces this `extra` entirely.
 */
export function baseSessionOptions(provider: ProviderName, intraOpNumThreads: number): InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
    logSeverityLevel: 3,
    ...(intraOpNumThreads !== 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
}

/** Zero-filled feeds for every tensor input (symbolic dims as 1). */
export function zeroFeeds(session: InferenceSession): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new TypeError(`input ${m.name} is not a tensor`);
    const dims = m.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const t = m.type;
    if (t === 'float32') feeds[m.name] = new ort.Tensor('float32', new Float32Array(n), dims);
    else if (t === 'uint8') feeds[m.name] = new ort.Tensor('uint8', new Uint8Array(n), dims);
    else if (t === 'int64') feeds[m.name] = new ort.Tensor('int64', new BigInt64Array(n), dims);
    else if (t === 'int32') feeds[m.name] = new ort.Tensor('int32', new Int32Array(n), dims);
    else throw new TypeError(`input ${m.name}: no zero feed for ${t}`);
  }
  return feeds;
}

/**
 * Create a profiled session, run it once, and count nodes per provider from
 * the profile (ORT writes it to a file: a temp folder, removed afterwards).
 */
export async function profilePlacement(model: Uint8Array, options: InferenceSession.SessionOptions): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'inspector-ort-profile-'));
  try {
    const s = await ort.InferenceSession.create(model, { ...options, enableProfiling: true, profileFilePrefix: join(dir, 'p') });
    try {
      await s.run(zeroFeeds(s));
      s.endProfiling();
    } finally {
      await s.release();
    }
    const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('no profile written');
    const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string; args?: { provider?: string } }>;
    const nodes = new Map<string, string>();
    for (const e of events) {
      if (e.cat === 'Node' && e.name && e.args?.provider) nodes.set(e.name.replace(/_(kernel_time|fence_before|fence_after)$/, ''), e.args.provider);
    }
    const counts: Record<string, number> = {};
    for (const p of nodes.values()) counts[p] = (counts[p] ?? 0) + 1;
    return counts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

/**
 * Create a session for `model` with the first provider that works.
 * Throws ConfigInvalidError for a bad list, NoExecutionProviderError when
 * every provider failed (the message lists each reason).
 */
export async function createSessionWithFallback(model: Uint8Array, opts: CreateSessionOptions): Promise<SessionWithProvider> {
  const providers = validateProviders(opts.providers);
  if (!Number.isInteger(opts.intraOpNumThreads) || opts.intraOpNumThreads < 0) {
    throw new ConfigInvalidError(`intraOpNumThreads must be a non-negative integer, got ${opts.intraOpNumThreads}`);
  }
  const fallbacks: ProviderFallback[] = [];
  /** one info line for the providers this machine does not have, once one works */
  const absentNote = (provider: ProviderName): void => {
    const absent = fallbacks.filter((f) => providerAbsent(f.reason)).map((f) => f.provider);
    if (absent.length) opts.logger.info({ absent, provider }, `execution providers not on this machine: ${absent.join(', ')}; running on ${provider}`);
  };
  for (const provider of providers) {
    const options = { ...baseSessionOptions(provider, opts.intraOpNumThreads), ...opts.sessionOptions };
    const bytes = opts.modelFor?.[provider] ?? model;
    const t0 = performance.now();
    let session: InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, options);
    } catch (err) {
      const reason = errorMessage(err);
      fallbacks.push({ provider, reason });
      if (!providerAbsent(reason)) {
        opts.logger.warn({ provider, reason, ms: Math.round(performance.now() - t0) }, `execution provider ${provider} failed, trying the next`);
      }
      continue;
    }
    if (provider === 'cpu' || opts.verifyPlacement === false) { absentNote(provider); return { session, provider, fallbacks }; }

    let placement: Record<string, number>;
    try {
      placement = await profilePlacement(bytes, options);
    } catch (err) {
      await session.release();
      const reason = `session created but a profiled run failed: ${errorMessage(err)}`;
      fallbacks.push({ provider, reason });
      opts.logger.warn({ provider, reason }, `execution provider ${provider} failed, trying the next`);
      continue;
    }
    const onDevice = placement[ORT_EP_NAME[provider]] ?? 0;
    const total = Object.values(placement).reduce((a, b) => a + b, 0);
    if (onDevice === 0) {
      await session.release();
      const reason = `session created but no node was placed on ${ORT_EP_NAME[provider]} `
        + `(placement ${JSON.stringify(placement)}): silent CPU fallback`;
      fallbacks.push({ provider, reason });
      opts.logger.warn({ provider, reason, placement }, `execution provider ${provider} placed nothing, trying the next`);
      continue;
    }
    if (onDevice < total) {
      opts.logger.info({ provider, placement }, `execution provider ${provider} runs ${onDevice}/${total} nodes, the rest on CPU`);
    }
    absentNote(provider);
    return { session, provider, fallbacks, placement };
  }
  throw new NoExecutionProviderError(fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ') || 'no provider tried');
}
