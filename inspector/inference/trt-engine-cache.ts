/**
 * TensorRT engines, built before a model goes live and cached by model hash,
 * GPU and TensorRT version, never on the running line.
 *
 * How the options reach TensorRT from JavaScript: onnxruntime-node (1.30's
 * session_options_helper.cc) passes only `deviceId` to the TensorRT provider
 * (OrtTensorRTProviderOptionsV2 with its defaults: engine cache off), and the
 * V2 options switch off the provider's ORT_TENSORRT_* environment variables.
 * What does reach it are session config entries (`extra`): since ONNX Runtime
 * 1.17 (microsoft/onnxruntime#19154) the TensorRT provider takes
 * `ep.context_enable`, `ep.context_file_path` and `ep.context_embed_mode` from
 * them when its own provider options leave them unset. With embed mode 1 the
 * session writes an "EP context" model: one EPContext node holding the
 * serialized engine. A later session created from that model deserializes the
 * engine and builds nothing.
 *
 * So the build is an explicit step (`ensureTrtEngine`), run where a runner
 * starts (station start, the validation gate's candidate, a promotion's runner:
 * all before the runner serves a part), and the cache folder is keyed
 *   <root>/<model sha256>/<gpu name slug>/trt-<TensorRT version>/model_ctx.onnx
 * because an engine is only valid for the exact graph, GPU and TensorRT build.
 * Unverified on a GPU here (no GPU was lent): scripts/gpu-check.sh checks that
 * the context model is written, and that a second start reuses it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';

export interface TrtCacheKeyParts {
  /** sha256 (hex) of the exact model bytes the session is created from */
  modelSha256: string;
  /** the GPU's name as nvidia-smi reports it (e.g. "NVIDIA H100 80GB HBM3") */
  gpu: string;
  /** TensorRT's version (from libnvinfer.so.X.Y.Z), e.g. "10.7.0" */
  trtVersion: string;
}

export const TRT_CONTEXT_FILE = 'model_ctx.onnx';

/** A file-name-safe form of a GPU name: lower case, runs of anything but [a-z0-9] as one '-'. */
export function gpuSlug(gpu: string): string {
  return gpu.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** The cache folder's path below the root: one per (model, GPU, TensorRT). Throws on parts that cannot key a cache. */
export function trtCacheKey(p: TrtCacheKeyParts): string {
  if (!/^[0-9a-f]{64}$/.test(p.modelSha256)) throw new RangeError(`modelSha256 must be 64 lower-case hex digits, got "${p.modelSha256}"`);
  const slug = gpuSlug(p.gpu);
  if (!slug) throw new RangeError(`a GPU name is needed to key a TensorRT engine, got "${p.gpu}"`);
  if (!/^\d+(\.\d+){0,3}$/.test(p.trtVersion)) throw new RangeError(`trtVersion must look like 10.7.0, got "${p.trtVersion}"`);
  return join(p.modelSha256, slug, `trt-${p.trtVersion}`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** TensorRT's version from library file names (libnvinfer.so.10.7.0 → "10.7.0"); the longest version wins. */
export function trtVersionFromFiles(names: readonly string[]): string | null {
  let best: string | null = null;
  for (const n of names) {
    const m = /^libnvinfer\.so\.(\d+(?:\.\d+){1,3})$/.exec(n);
    if (m && (best === null || m[1]!.split('.').length > best.split('.').length)) best = m[1]!;
  }
  return best;
}

/** TensorRT's version from the library folders ORT would load it from (LD_LIBRARY_PATH and the given ones). */
export function detectTrtVersion(extraDirs: readonly string[] = []): string | null {
  const dirs = [...extraDirs, ...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter)].filter(Boolean);
  for (const d of dirs) {
    try {
      const v = trtVersionFromFiles(readdirSync(d));
      if (v) return v;
    } catch { /* a folder that is not there */ }
  }
  return null;
}

/** The first GPU's name from nvidia-smi, or null (no driver, no GPU). */
export function detectGpuName(): string | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').map((l) => l.trim()).find(Boolean) ?? null;
  } catch {
    return null;
  }
}

/**
 * Session options that make the TensorRT provider write its engine into an EP context model
 * (embedded: one self-contained file). Merged over `base`, keeping base's `extra` entries.
 */
export function trtContextOptions(base: InferenceSession.SessionOptions, contextFile: string): InferenceSession.SessionOptions {
  const extra = (base.extra ?? {}) as Record<string, unknown>;
  return {
    ...base,
    extra: { ...extra, ep: { ...(extra.ep as object | undefined), context_enable: '1', context_file_path: contextFile, context_embed_mode: '1' } },
  };
}

export interface TrtEngine {
  /** the EP context model: create the line's TensorRT session from these bytes */
  contextModel: Uint8Array;
  dir: string;
  /** false: taken from the cache */
  built: boolean;
  buildMs: number;
}

export interface EnsureTrtEngineOptions {
  /** the model bytes the session would be created from (the key hashes them) */
  model: Uint8Array;
  /** cache root (e.g. var/trt-engines) */
  root: string;
  /** the TensorRT session options (provider 'tensorrt', threads…) */
  sessionOptions: InferenceSession.SessionOptions;
  /** creates and runs the build session once (injected: tests and the worker pass ORT's) */
  build: (model: Uint8Array, options: InferenceSession.SessionOptions) => Promise<void>;
  gpu?: string | null;
  trtVersion?: string | null;
}

/**
 * The engine for this model on this GPU and TensorRT: from the cache, or built now (a session
 * with the EP context options, created and released) and cached. Throws with the reason when it
 * cannot be keyed (no GPU, no TensorRT library) or the session wrote no context model.
 */
export async function ensureTrtEngine(o: EnsureTrtEngineOptions): Promise<TrtEngine> {
  const gpu = o.gpu === undefined ? detectGpuName() : o.gpu;
  if (!gpu) throw new Error('no NVIDIA GPU found (nvidia-smi): no TensorRT engine to build');
  const trtVersion = o.trtVersion === undefined ? detectTrtVersion() : o.trtVersion;
  if (!trtVersion) throw new Error('no libnvinfer.so.X.Y.Z on LD_LIBRARY_PATH: TensorRT version unknown, engine not cached');
  const modelSha256 = sha256Hex(o.model);
  const dir = join(o.root, trtCacheKey({ modelSha256, gpu, trtVersion }));
  const file = join(dir, TRT_CONTEXT_FILE);
  if (existsSync(file)) return { contextModel: readFileSync(file), dir, built: false, buildMs: 0 };
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  await o.build(o.model, trtContextOptions(o.sessionOptions, file));
  const buildMs = performance.now() - t0;
  if (!existsSync(file)) {
    throw new Error(`the TensorRT session wrote no EP context model at ${file}: this onnxruntime-node does not pass `
      + 'ep.context_* session entries to TensorRT; the engine is built at each start (still before the line runs)');
  }
  writeFileSync(join(dir, 'key.json'), JSON.stringify({ modelSha256, gpu, trtVersion, builtAt: new Date().toISOString(), buildMs }, null, 2) + '\n');
  return { contextModel: readFileSync(file), dir, built: true, buildMs };
}
