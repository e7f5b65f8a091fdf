/**
 * A registered candidate through the validation gate (validation-gate.ts), beside the live
 * model: the golden set is loaded once; the live package is loaded on a temporary background
 * runner (the live one is busy on the line) next to the candidate's, both built from the
 * station's current state (LiveModels.createRunner) and niced alike: the two are timed
 * interleaved in the same run (the latency check compares them), and the live model's
 * golden-set result is scored once per model, threshold and calibration version and cached.
 * Nothing is swapped here.
 */
import type { ModelRunner } from '../inference/model-runner.js';
import type { ModelRegistry } from './model-registry.js';
import { refKey, type ModelRef } from './registry-state.js';
import { loadGoldenSet, type GoldenSet } from './golden-set.js';
import { loadFailedReport, runGate, scoreGolden, type AccuracyResult, type ValidationReport } from './validation-gate.js';
import type { LifecycleHost, LiveModels } from './live-models.js';
import { ModelNotFoundError } from './errors.js';

export class CandidateGate {
  private golden: GoldenSet | null = null;
  private readonly goldenScores = new Map<string, AccuracyResult>();

  constructor(private readonly host: LifecycleHost, private readonly registry: ModelRegistry, private readonly models: LiveModels) {}

  /** Load a registered candidate and run the gate on it; the runner comes back only when it loaded. */
  async candidate(ref: ModelRef): Promise<{ report: ValidationReport; runner: ModelRunner | null }> {
    if (!(await this.registry.has(ref))) throw new ModelNotFoundError(refKey(ref));
    const golden = await this.goldenSet();
    let runner: ModelRunner;
    try {
      runner = await this.models.createRunner(this.registry.dirOf(ref), true);
    } catch (err) {
      return { report: loadFailedReport(ref, err as Error), runner: null };
    }
    try {
      const liveRunner = await this.models.createRunner(this.models.liveDirOrConfigured(), true);
      try {
        const live = { ...await this.liveGolden(golden, liveRunner), scorer: liveRunner };
        const { registry, model } = this.host.config;
        const report = await runGate(ref, runner, golden, live, {
          providers: model.providers, latencyBudgetMs: registry.latencyBudgetMs, latencyMargin: registry.latencyMargin,
          latencySlackMs: registry.latencySlackMs, latencyRuns: registry.warmupFrames, accuracyMargin: registry.accuracyMargin,
        });
        this.host.logger.info({ model: refKey(ref), ok: report.ok, checks: report.checks }, 'validation gate');
        return { report, runner };
      } finally {
        await liveRunner.close();
      }
    } catch (err) {
      await runner.close();
      throw err;
    }
  }

  private async goldenSet(): Promise<GoldenSet> {
    const { registry, camera } = this.host.config;
    this.golden ??= await loadGoldenSet(registry.goldenDir, { width: camera.width, height: camera.height }, registry.goldenImages);
    return this.golden;
  }

  /** The live model's golden-set result, scored once per model on the temporary runner `runner` (the live one is busy on the line). */
  private async liveGolden(golden: GoldenSet, runner: ModelRunner): Promise<{ provider: string; accuracy: AccuracyResult }> {
    const live = this.models.live;
    const ref = this.models.liveRef ?? { name: live.modelName, version: live.modelVersion };
    // the score depends on the frames the model sees: the calibration version is part of the key
    const key = `${refKey(ref)}:${live.threshold}:cal${this.host.calibrationVersion() ?? 'none'}`;
    let acc = this.goldenScores.get(key);
    if (!acc) {
      acc = await scoreGolden(runner, golden);
      this.goldenScores.set(key, acc);
    }
    return { provider: live.provider, accuracy: acc };
  }
}
