/**
 * The runner's timing figures: the worker's raw timing replies (benchBare(), interleavedBare())
 * summed up as nearest-rank percentiles. Off the line's path (the benchmark, eval and the
 * validation gate read them), so kept apart from the frame dispatch in model-runner.ts, which
 * re-exports these names.
 */
import type { FromWorker } from './inference-worker.js';

export interface BenchResult {
  p50: number;
  p99: number;
  /** per-run session.run times in ms, in run order */
  samples: number[];
  /** preprocessing + session.run (equal to the above when preprocessing is inside the graph) */
  withPreprocess: { p50: number; p99: number };
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** Bare timings taken on real frames, interleaved with the line (`timeBareEvery`). */
export interface InterleavedBare {
  count: number;
  /** session.run alone */
  run: { p50: number; p99: number };
  /** the frame's preprocessing (binning, registration, lens table) + session.run */
  withPreprocess: { p50: number; p99: number };
}

/** benchBare(): the worker's back-to-back session.run samples, summed up. */
export function benchResultOf(m: Extract<FromWorker, { t: 'bench' }>): BenchResult {
  return { p50: percentile(m.samples, 0.5), p99: percentile(m.samples, 0.99), samples: m.samples,
    withPreprocess: { p50: percentile(m.withPreprocess, 0.5), p99: percentile(m.withPreprocess, 0.99) } };
}

/** interleavedBare(): the bare runs the worker timed on real frames so far, summed up. */
export function interleavedBareOf(m: Extract<FromWorker, { t: 'bareSamples' }>): InterleavedBare {
  return { count: m.run.length,
    run: { p50: percentile(m.run, 0.5), p99: percentile(m.run, 0.99) },
    withPreprocess: { p50: percentile(m.withPreprocess, 0.5), p99: percentile(m.withPreprocess, 0.99) } };
}
