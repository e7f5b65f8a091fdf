/**
 * The TensorRT engine cache's key and its build-once logic (inspector/inference/trt-engine-cache.ts),
 * on a machine without a GPU: the build step is injected (it writes the context model as ORT's
 * TensorRT provider would, or writes nothing as an onnxruntime-node that drops the options would).
 * What needs a GPU (ORT really writing the engine, a second start reusing it) is scripts/gpu-check.sh's.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { ensureTrtEngine, gpuSlug, sha256Hex, trtCacheKey, trtContextOptions, trtVersionFromFiles, TRT_CONTEXT_FILE } from '../inspector/inference/trt-engine-cache.js';

const SHA = 'a'.repeat(64);

describe('TensorRT engine cache key', () => {
  it('keys by model sha256, GPU and TensorRT version, each of which changes the folder', () => {
    const base = { modelSha256: SHA, gpu: 'NVIDIA H100 80GB HBM3', trtVersion: '10.7.0' };
    expect(trtCacheKey(base)).toBe(join(SHA, 'nvidia-h100-80gb-hbm3', 'trt-10.7.0'));
    const keys = new Set([trtCacheKey(base), trtCacheKey({ ...base, modelSha256: 'b'.repeat(64) }),
      trtCacheKey({ ...base, gpu: 'NVIDIA H200' }), trtCacheKey({ ...base, trtVersion: '10.8.0' })]);
    expect(keys.size).toBe(4);
  });

  it('refuses parts that cannot key an engine', () => {
    expect(() => trtCacheKey({ modelSha256: 'xyz', gpu: 'g', trtVersion: '10.0' })).toThrow(/modelSha256/);
    expect(() => trtCacheKey({ modelSha256: SHA, gpu: ' / ', trtVersion: '10.0' })).toThrow(/GPU/);
    expect(() => trtCacheKey({ modelSha256: SHA, gpu: 'g', trtVersion: '../10' })).toThrow(/trtVersion/);
  });

  it('reads the TensorRT version from library names, the longest version winning', () => {
    expect(trtVersionFromFiles(['libnvinfer.so', 'libnvinfer.so.10', 'libnvinfer.so.10.7.0', 'libnvinfer_plugin.so.10.7.0'])).toBe('10.7.0');
    expect(trtVersionFromFiles(['libcudart.so.13'])).toBeNull();
    expect(gpuSlug('  Tesla T4 ')).toBe('tesla-t4');
  });

  it('adds the EP context entries to the session options, keeping their other extra entries', () => {
    const base: InferenceSession.SessionOptions = { executionProviders: ['tensorrt'], extra: { session: { intra_op: { allow_spinning: '0' } } } };
    const o = trtContextOptions(base, '/c/model_ctx.onnx');
    expect(o.extra).toEqual({ session: { intra_op: { allow_spinning: '0' } },
      ep: { context_enable: '1', context_file_path: '/c/model_ctx.onnx', context_embed_mode: '1' } });
    expect(o.executionProviders).toEqual(['tensorrt']);
  });
});

describe('ensureTrtEngine: built once per key, then taken from the cache', () => {
  const root = mkdtempSync(join(tmpdir(), 'trt-cache-test-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const model = new Uint8Array([1, 2, 3, 4]);
  const gpu = 'NVIDIA H100 80GB HBM3';

  it('builds into the keyed folder, records the key, and a second start does not build', async () => {
    let builds = 0;
    const build = async (_m: Uint8Array, o: InferenceSession.SessionOptions): Promise<void> => {
      builds++;
      const file = (o.extra as { ep: { context_file_path: string } }).ep.context_file_path;
      writeFileSync(file, 'engine');
    };
    const first = await ensureTrtEngine({ model, root, sessionOptions: {}, build, gpu, trtVersion: '10.7.0' });
    expect(first.built).toBe(true);
    expect(first.dir).toBe(join(root, sha256Hex(model), 'nvidia-h100-80gb-hbm3', 'trt-10.7.0'));
    expect(Buffer.from(first.contextModel).toString()).toBe('engine');
    expect(JSON.parse(readFileSync(join(first.dir, 'key.json'), 'utf8'))).toMatchObject({ modelSha256: sha256Hex(model), gpu, trtVersion: '10.7.0' });
    const again = await ensureTrtEngine({ model, root, sessionOptions: {}, build, gpu, trtVersion: '10.7.0' });
    expect(again.built).toBe(false);
    expect(builds).toBe(1);
    // another TensorRT version is another engine
    const other = await ensureTrtEngine({ model, root, sessionOptions: {}, build, gpu, trtVersion: '10.8.0' });
    expect(other.built).toBe(true);
    expect(builds).toBe(2);
  });

  it('says why when there is nothing to key or the session wrote no context model', async () => {
    const build = async (): Promise<void> => undefined;
    await expect(ensureTrtEngine({ model, root, sessionOptions: {}, build, gpu: null, trtVersion: '10.7.0' })).rejects.toThrow(/no NVIDIA GPU/);
    await expect(ensureTrtEngine({ model, root, sessionOptions: {}, build, gpu, trtVersion: null })).rejects.toThrow(/libnvinfer/);
    await expect(ensureTrtEngine({ model: new Uint8Array([9]), root, sessionOptions: {}, build, gpu, trtVersion: '10.7.0' }))
      .rejects.toThrow(/wrote no EP context model/);
    expect(() => readFileSync(join(root, sha256Hex(new Uint8Array([9])), 'nvidia-h100-80gb-hbm3', 'trt-10.7.0', TRT_CONTEXT_FILE))).toThrow();
  });
});
