/**
 * The validation gate: a model goes live only when
 *  1. load      it loads with a provider of the configured list, no worse
 *               (later in the list) than the one the live model runs on;
 *  2. latency   its P99 inference time over the station's warm-up frames (the
 *               golden images, cycled) is within the absolute budget
 *               (`registry.latencyBudgetMs`) AND, against the live model measured
 *               in the same run on the same frames (interleaved, so both see the
 *               same load), within live P99 x (1 + `latencyMargin`) + `latencySlackMs`:
 *               a loaded machine slows both alike, so an unchanged copy passes;
 *  3. accuracy  on the golden set its accuracy is not below the live model's
 *               by more than `accuracyMargin`.
 * Verdicts on the golden set come from the package's own rule (decision-rule.ts
 * `decideOutput`: threshold, per-class thresholds, minimum defect area), the one the
 * line runs. Every check is reported, passed or not, with its figure, so a refusal
 * says exactly why.
 */
import type { GoldenSet } from './golden-set.js';
import { decideOutput, type DecisionPort } from '../inference/decision-rule.js';
import { percentile } from '../inference/model-runner.js';

export interface GateScorer extends DecisionPort {
  infer(frame: Uint8Array): Promise<{ score: number; inferenceMs: number; map?: Float32Array; registration?: { ok: boolean } | null }>;
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
  /** the measured figure in a few words (e.g. "P99 2.41 ms (live 2.30 ms)") */
  figure: string;
  /** the verdict in a sentence: what was measured against what */
  detail: string;
}

export interface LatencyFigures {
  p50Ms: number;
  p99Ms: number;
  /** the absolute budget (registry.latencyBudgetMs) */
  budgetMs: number;
  runs: number;
  /** the live model measured in the same run (null: no live model to compare) */
  live: { p50Ms: number; p99Ms: number } | null;
  margin: number;
  slackMs: number;
  /** the candidate's P99 limit: min(budget, live P99 x (1 + margin) + slack) */
  limitMs: number;
  /** measurement rounds taken (a refused round is measured again, up to LATENCY_ROUNDS) */
  rounds: number;
}

export const LATENCY_ROUNDS = 3;

export interface ValidationReport {
  model: { name: string; version: string };
  ok: boolean;
  provider: string | null;
  checks: GateCheck[];
  latency: LatencyFigures | null;
  accuracy: { candidate: number; live: number | null; margin: number; images: number } | null;
  /** the failed checks' details, for the refusal message */
  reasons: string[];
  /** the key id the package is signed with (null: unsigned); set by the lifecycle, which verifies first */
  signer?: string | null;
}

export interface GateSettings {
  providers: readonly string[];
  /** absolute P99 budget in ms */
  latencyBudgetMs: number;
  /** relative margin over the live model's P99 measured in the same run (0.5 = 50 %) */
  latencyMargin: number;
  /** added to the relative limit (ms): timer and scheduling noise on tiny models */
  latencySlackMs: number;
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

/** Score every golden image once (serially) and count correct verdicts, under the package's own rule. */
export async function scoreGolden(scorer: GateScorer, golden: GoldenSet): Promise<AccuracyResult> {
  let correct = 0;
  const scores: number[] = [];
  for (const img of golden.images) {
    await pause();
    const r = await scorer.infer(img.data);
    scores.push(r.score);
    const { verdict } = decideOutput(scorer, r.score, r.map, r.registration?.ok ?? true);
    if ((verdict === 'pass') === (img.label === 'good')) correct++;
  }
  return { accuracy: correct / golden.images.length, correct, images: golden.images.length, scores };
}

export interface LatencySamples { p50: number; p99: number; samples: number[] }
const summary = (samples: number[]): LatencySamples => ({ p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), samples });

/** Inference time over `runs` golden frames (cycled). */
export async function measureLatency(scorer: GateScorer, golden: GoldenSet, runs: number): Promise<LatencySamples> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    await pause();
    samples.push((await scorer.infer(golden.images[i % golden.images.length]!.data)).inferenceMs);
  }
  return summary(samples);
}

/**
 * The candidate and the live model timed in the same run, on the same frames, one after the other
 * (which goes first alternates), so both see the same load: the comparison holds on a busy machine.
 */
export async function measureLatencyPair(candidate: GateScorer, live: GateScorer, golden: GoldenSet, runs: number)
  : Promise<{ candidate: LatencySamples; live: LatencySamples }> {
  const c: number[] = [];
  const l: number[] = [];
  for (let i = 0; i < runs; i++) {
    const frame = golden.images[i % golden.images.length]!.data;
    await pause();
    if (i % 2 === 0) { c.push((await candidate.infer(frame)).inferenceMs); l.push((await live.infer(frame)).inferenceMs); }
    else { l.push((await live.infer(frame)).inferenceMs); c.push((await candidate.infer(frame)).inferenceMs); }
  }
  return { candidate: summary(c), live: summary(l) };
}

/** The latency check on measured figures (pure: tested with fixed numbers). */
export function latencyCheck(settings: GateSettings, cand: { p50: number; p99: number }, live: { p50: number; p99: number } | null)
  : { check: GateCheck; figures: LatencyFigures } {
  const { latencyBudgetMs: budget, latencyMargin: margin, latencySlackMs: slack, latencyRuns: runs } = settings;
  const relative = live ? live.p99 * (1 + margin) + slack : Infinity;
  const limit = Math.min(budget, relative);
  const ok = cand.p99 <= limit;
  const ms = (v: number): string => `${v.toFixed(2)} ms`;
  const figure = `P99 ${ms(cand.p99)}${live ? ` (live ${ms(live.p99)})` : ''}, limit ${ms(limit)}`;
  const parts = [`P99 ${ms(cand.p99)} over ${runs} warm-up frames`];
  if (cand.p99 > budget) parts.push(`exceeds the budget of ${budget} ms`);
  else parts.push(`within the budget of ${budget} ms`);
  if (live) {
    const rel = `live P99 ${ms(live.p99)} measured in the same run x ${(1 + margin).toFixed(2)} + ${slack} ms = ${ms(relative)}`;
    parts.push(cand.p99 > relative ? `and slower than ${rel}` : `and no slower than ${rel}`);
  } else {
    parts.push('(no live model to compare)');
  }
  return {
    check: { check: 'latency', ok, figure, detail: parts.join(' ') },
    figures: {
      p50Ms: cand.p50, p99Ms: cand.p99, budgetMs: budget, runs,
      live: live ? { p50Ms: live.p50, p99Ms: live.p99 } : null, margin, slackMs: slack, limitMs: limit, rounds: 1,
    },
  };
}

/** The load check alone (the runner exists): is its provider as good as the live one's? */
export function loadCheck(settings: GateSettings, provider: string, liveProvider: string | null): GateCheck {
  const rank = (p: string): number => { const i = settings.providers.indexOf(p); return i < 0 ? Infinity : i; };
  if (rank(provider) === Infinity) {
    return { check: 'load', ok: false, figure: provider, detail: `loaded on ${provider}, which is not in the configured providers [${settings.providers.join(', ')}]` };
  }
  if (liveProvider !== null && rank(provider) > rank(liveProvider)) {
    return { check: 'load', ok: false, figure: provider, detail: `loaded on ${provider} only; the live model runs on ${liveProvider}` };
  }
  return { check: 'load', ok: true, figure: provider, detail: `loaded on ${provider}` };
}

/**
 * Run latency and accuracy checks on a loaded candidate. `live`: the live model's golden result
 * and, when it could be loaded beside the candidate, its scorer for the latency comparison
 * (null: no live model; only the absolute budget applies).
 */
export async function runGate(
  model: { name: string; version: string }, candidate: GateScorer & { provider: string }, golden: GoldenSet,
  live: { provider: string; accuracy: AccuracyResult; scorer?: GateScorer | null } | null, settings: GateSettings,
): Promise<ValidationReport> {
  const checks: GateCheck[] = [loadCheck(settings, candidate.provider, live?.provider ?? null)];
  // A P99 over ~100 frames on a busy machine is decided by its few slowest frames: one stall of either
  // model can swing it. A refused round is measured again (up to LATENCY_ROUNDS): a model that is really
  // slower fails every round, an unlucky round of an equal one does not refuse it.
  let lat!: ReturnType<typeof latencyCheck>;
  let rounds = 0;
  while (rounds < LATENCY_ROUNDS) {
    rounds++;
    const timed = live?.scorer
      ? await measureLatencyPair(candidate, live.scorer, golden, settings.latencyRuns)
      : { candidate: await measureLatency(candidate, golden, settings.latencyRuns), live: null };
    lat = latencyCheck(settings, timed.candidate, timed.live);
    if (lat.check.ok) break;
  }
  if (rounds > 1) lat.check.detail += ` (round ${rounds} of ${LATENCY_ROUNDS}${lat.check.ok ? '' : ', every round refused'})`;
  lat.figures.rounds = rounds;
  checks.push(lat.check);
  const acc = await scoreGolden(candidate, golden);
  const floor = live ? live.accuracy.accuracy - settings.accuracyMargin : -Infinity;
  const accOk = acc.accuracy >= floor - 1e-12;
  const pct1 = (v: number): string => `${(v * 100).toFixed(1)}%`;
  checks.push({ check: 'accuracy', ok: accOk,
    figure: `${pct1(acc.accuracy)} (${acc.correct}/${acc.images})${live ? ` vs live ${pct1(live.accuracy.accuracy)}` : ''}`,
    detail: `golden-set accuracy ${pct1(acc.accuracy)} (${acc.correct}/${acc.images})`
      + (live ? ` ${accOk ? 'is within' : 'falls more than'} ${(settings.accuracyMargin * 100).toFixed(1)} points ${accOk ? 'of' : 'below'} the live model's ${pct1(live.accuracy.accuracy)}`
        : ' (no live model to compare)') });
  const reasons = checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`);
  return {
    model, ok: reasons.length === 0, provider: candidate.provider, checks, latency: lat.figures,
    accuracy: { candidate: acc.accuracy, live: live?.accuracy.accuracy ?? null, margin: settings.accuracyMargin, images: acc.images },
    reasons,
  };
}

/** The report for a candidate that did not even load. */
export function loadFailedReport(model: { name: string; version: string }, err: Error & { code?: string }): ValidationReport {
  const detail = `${err.code ?? 'ERROR'}: ${err.message}`;
  return { model, ok: false, provider: null, checks: [{ check: 'load', ok: false, figure: 'did not load', detail }], latency: null, accuracy: null, reasons: [`load: ${detail}`] };
}
