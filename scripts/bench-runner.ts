/**
 * The model-runner benchmark: the inference worker and the decision on frames
 * held in memory, for machines without GStreamer (the GPU machines
 * scripts/gpu-check.sh runs on). NOT the line: no camera, no PLC, no capture
 * hand-over; it times what the line's inference stage does on one provider.
 *
 *   tsx scripts/bench-runner.ts --provider cuda --frames 2000 --rate 100 --json runner-cuda.json
 *   tsx scripts/bench-runner.ts --provider tensorrt --probe          # start the runner only, say whether it loads
 *
 * Exactly one provider, no fallback: a provider that does not load is reported
 * as such (exit 2, with the reason), never measured on the CPU by accident.
 * With TensorRT, the engine is built into --trt-cache before the first frame
 * (inference/trt-engine-cache.ts) and a second runner is started to check that
 * it is taken from the cache (its start-up time is in the JSON).
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { logger } from '../inspector/core/logger.js';
import { readGray } from '../inspector/core/gray-image.js';
import { ModelRunner, percentile } from '../inspector/inference/model-runner.js';
import { decideOutput } from '../inspector/inference/decision-rule.js';
import { providerAbsent, validateProviders } from '../inspector/inference/providers.js';
import { detectGpuName, detectTrtVersion } from '../inspector/inference/trt-engine-cache.js';

const opts = new Command('bench-runner')
  .requiredOption('--provider <name>', 'tensorrt | cuda | webgpu | cpu (exactly one, no fallback)')
  .option('--model <dir>', 'model package', 'models/default/1.0.0')
  .option('--images <dir>', 'part images, held in memory', 'test-images/test/parts')
  .option('--frames <n>', 'frames to judge', (v) => parseInt(v, 10), 2000)
  .option('--rate <r>', 'frames per second (0: back to back)', (v) => parseFloat(v), 100)
  .option('--threads <n>', 'ONNX Runtime intra-op threads', (v) => parseInt(v, 10), 2)
  .option('--trt-cache <dir>', 'TensorRT engine cache root', 'var/trt-engines')
  .option('--probe', 'start the runner and report whether the provider loads; judge no frame')
  .option('--json <file>', 'write the report as JSON')
  .parse(process.argv)
  .opts<{ provider: string; model: string; images: string; frames: number; rate: number; threads: number; trtCache: string; probe?: boolean; json?: string }>();

const log = logger.child({ mod: 'bench-runner' });
const [provider] = validateProviders([opts.provider]);
const names = readdirSync(opts.images).filter((n) => /\.(png|jpe?g)$/i.test(n)).sort().slice(0, 64);
if (names.length === 0) throw new Error(`${opts.images}: no images`);
const frames = await Promise.all(names.map((n) => readGray(join(opts.images, n))));
const { width, height } = frames[0]!;

const start = async (): Promise<{ runner: ModelRunner | null; ms: number; error: string | null }> => {
  const t0 = performance.now();
  try {
    const runner = await ModelRunner.create({ packageDir: opts.model, frame: { width, height }, providers: [provider!], intraOpNumThreads: opts.threads,
      warmupRuns: 20, transport: 'transfer', trtEngineCacheDir: opts.trtCache, logger: log, deadlineMs: 60_000 });
    return { runner, ms: performance.now() - t0, error: null };
  } catch (err) {
    return { runner: null, ms: performance.now() - t0, error: (err as Error).message };
  }
};

const first = await start();
const report: Record<string, unknown> = {
  date: new Date().toISOString(),
  mode: 'model-runner: frames from memory (no camera, no capture hand-over, no PLC); inference worker + decision only',
  provider, loaded: first.runner !== null, reason: first.error,
  absent: first.error !== null && providerAbsent(first.error),
  gpu: detectGpuName(), tensorrt_version: detectTrtVersion(), node: process.version,
  startup_ms: first.ms, frame: `${width}x${height} GRAY8`, model: opts.model,
};
if (first.runner && provider === 'tensorrt') {
  // the engine was built (or found) while the first runner started; a second start must take it from the cache
  const second = await start();
  // the engines in the cache (each folder's key.json: model sha256, GPU, TensorRT version, build time)
  const keys = existsSync(opts.trtCache)
    ? readdirSync(opts.trtCache, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('key.json'))
      .map((f) => JSON.parse(readFileSync(join(opts.trtCache, f), 'utf8')) as unknown) : [];
  report.trt_engine = { cache: opts.trtCache, engines: keys, first_startup_ms: first.ms, second_startup_ms: second.ms, second_error: second.error };
  await second.runner?.close();
}
if (first.runner && !opts.probe) {
  const runner = first.runner;
  const roundTrip: number[] = [];
  const inference: number[] = [];
  let rejects = 0;
  const periodMs = opts.rate > 0 ? 1000 / opts.rate : 0;
  const t0 = performance.now();
  for (let i = 0; i < opts.frames; i++) {
    if (periodMs > 0) { const due = t0 + i * periodMs; const wait = due - performance.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait)); }
    const s = process.hrtime.bigint();
    const r = await runner.infer(frames[i % frames.length]!.data);
    if (decideOutput(runner, r.score, r.map, r.registration?.ok ?? true).verdict === 'reject') rejects++;
    roundTrip.push(Number(process.hrtime.bigint() - s) / 1e6);
    inference.push(r.inferenceMs);
  }
  const bare = await runner.benchBare(500);
  const d = (a: number[]) => ({ p50: percentile(a, 0.5), p99: percentile(a, 0.99), max: Math.max(...a) });
  Object.assign(report, {
    frames: opts.frames, rate: opts.rate, rejects, provider_ran: runner.provider, placement: runner.startup.placement,
    // main thread → worker → result → decision, per frame
    infer_and_decide_ms: d(roundTrip),
    inference_ms: d(inference),
    bare_session_run_ms: { p50: bare.p50, p99: bare.p99 }, bare_preprocess_and_run_ms: bare.withPreprocess,
  });
}
await first.runner?.close();
const out = JSON.stringify(report, null, 2) + '\n';
if (opts.json) writeFileSync(opts.json, out);
process.stdout.write(out);
process.exit(first.runner ? 0 : 2);
