/**
 * The validation gate: a model goes live only when
 *  1. load      it loads with a provider of the configured list, no worse
 *               (later in the list) than the one the live model runs on;
 *  2. latency   its P99 inference time over the station's warm-up frames
 *               (the golden images, cycled) is within the latency budget;
 *  3. accuracy  on the golden set its accuracy is not below the live model's
 *               by more than `accuracyMargin`.
 * Every check is reported, passed or not, so a refusal says exactly why.
 */
import type { GoldenSet } from './golden-set.js';
import { decide } from '../station/verdict.js';
import type { ClassDecision } from '../inference/decision-rule.js';
import { percentile } from '../inference/model-runner.js';

export interface GateScorer {
  infer(frame: Uint8Array): Promise<{ score: number; inferenceMs: number; map?: Float32Array }>;
  readonly threshold: number;
  /** multi-class outputs: decided per class, as on the line (part-loop.ts) */
  readonly classRule?: ClassDecision | null;
  readonly minDefectAreaPx?: number;
}

export interface AccuracyResult {
  accuracy: number;
  correct: number;
  images: number;
  /** per image, in golden order */
  scores: number[];
}

export interface GateCheck {
  check: 'load' | 'latency' | 'accuracy';
  ok: boolean;
  detail: string;
}

export interface ValidationReport {
  model: { name: string; version: string };
  ok: boolean;
  provider: string | null;
  checks: GateCheck[];
  latency: { p50Ms: number; p99Ms: number; budgetMs: number; runs: number } | null;
  accuracy: { candidate: number; live: number | null; margin: number; images: number } | null;
  /** the failed checks' details, for the refusal message */
  reasons: string[];
  /** the key id the package is signed with (null: unsigned); set by the lifecycle, which verifies first */
  signer?: string | null;
}

export interface GateSettings {
  providers: readonly string[];
  latencyBudgetMs: number;
  latencyRuns: number;
  accuracyMargin: number;
}

/**
 * Pause between validation inferences: the candidate shares the CPU with the
 * live model on the line, and a gate that runs flat out starves it (frames
 * dropped on a 2-core box). Not counted in the measured latency.
 */
export const GATE_PAUSE_MS = 4;
const pause = (): Promise<void> => new Promise((r) => setTimeout(r, GATE_PAUSE_MS));

/** Score every golden image once (serially) and count correct verdicts. */
export async function scoreGolden(scorer: GateScorer, golden: GoldenSet): Promise<AccuracyResult> {
  let correct = 0;
  const scores: number[] = [];
  for (const img of golden.images) {
    await pause();
    const { score, map } = await scorer.infer(img.data);
    scores.push(score);
    const rule = scorer.classRule;
    const verdict = rule && map ? rule.decide(score, map, scorer.minDefectAreaPx ?? 0).verdict : decide(score, scorer.threshold).verdict;
    if ((verdict === 'pass') === (img.label === 'good')) correct++;
  }
  return { accuracy: correct / golden.images.length, correct, images: golden.images.length, scores };
}

/** Inference time over `runs` golden frames (cycled). */
export async function measureLatency(scorer: GateScorer, golden: GoldenSet, runs: number): Promise<{ p50: number; p99: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    await pause();
    samples.push((await scorer.infer(golden.images[i % golden.images.length]!.data)).inferenceMs);
  }
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), samples };
}

/** The load check alone (the runner exists): is its provider as good as the live one's? */
export function loadCheck(settings: GateSettings, provider: string, liveProvider: string | null): GateCheck {
  const rank = (p: string): number => { const i = settings.providers.indexOf(p); return i < 0 ? Infinity : i; };
  if (rank(provider) === Infinity) {
    return { check: 'load', ok: false, detail: `loaded on ${provider}, which is not in the configured providers [${settings.providers.join(', ')}]` };
  }
  if (liveProvider !== null && rank(provider) > rank(liveProvider)) {
    return { check: 'load', ok: false, detail: `loaded on ${provider} only; the live model runs on ${liveProvider}` };
  }
  return { check: 'load', ok: true, detail: `loaded on ${provider}` };
}

/** Run latency and accuracy checks on a loaded candidate; `live` is the live model's golden result (null: none). */
export async function runGate(
  model: { name: string; version: string }, candidate: GateScorer & { provider: string }, golden: GoldenSet,
  live: { provider: string; accuracy: AccuracyResult } | null, settings: GateSettings,
): Promise<ValidationReport> {
  const checks: GateCheck[] = [loadCheck(settings, candidate.provider, live?.provider ?? null)];
  const lat = await measureLatency(candidate, golden, settings.latencyRuns);
  const latOk = lat.p99 <= settings.latencyBudgetMs;
  checks.push({ check: 'latency', ok: latOk,
    detail: `P99 ${lat.p99.toFixed(2)} ms over ${settings.latencyRuns} warm-up frames ${latOk ? 'within' : 'exceeds'} the budget of ${settings.latencyBudgetMs} ms` });
  const acc = await scoreGolden(candidate, golden);
  const floor = live ? live.accuracy.accuracy - settings.accuracyMargin : -Infinity;
  const accOk = acc.accuracy >= floor - 1e-12;
  checks.push({ check: 'accuracy', ok: accOk,
    detail: `golden-set accuracy ${(acc.accuracy * 100).toFixed(1)}% (${acc.correct}/${acc.images})`
      + (live ? ` vs live ${(live.accuracy.accuracy * 100).toFixed(1)}%, margin ${(settings.accuracyMargin * 100).toFixed(1)} points` : ' (no live model to compare)') });
  const reasons = checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`);
  return {
    model, ok: reasons.length === 0, provider: candidate.provider, checks,
    latency: { p50Ms: lat.p50, p99Ms: lat.p99, budgetMs: settings.latencyBudgetMs, runs: settings.latencyRuns },
    accuracy: { candidate: acc.accuracy, live: live?.accuracy.accuracy ?? null, margin: settings.accuracyMargin, images: acc.images },
    reasons,
  };
}

/** The report for a candidate that did not even load. */
export function loadFailedReport(model: { name: string; version: string }, err: Error & { code?: string }): ValidationReport {
  const detail = `${err.code ?? 'ERROR'}: ${err.message}`;
  return { model, ok: false, provider: null, checks: [{ check: 'load', ok: false, detail }], latency: null, accuracy: null, reasons: [`load: ${detail}`] };
}
