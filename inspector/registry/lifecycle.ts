/**
 * The model lifecycle, in the station's main thread: push, list, show,
 * shadow, promote (through the validation gate), roll back, delete. One
 * operation at a time (a second one while one runs is refused with
 * INSPECTOR_MODEL_LIFECYCLE_BUSY); every change is written to the registry
 * state (pointers + history with who and when).
 *
 * Live swap: the candidate's ModelRunner is created and validated while the
 * line runs on the live one; `PartLoop.swapInference` then switches between
 * two parts (each part reads the model once), and the old runner is closed
 * only after the part it was scoring is done. A refused candidate is closed
 * and the live model never noticed. Rollback swaps the same way.
 *
 * The heavy parts (package checks, sessions, warm-up, golden-set inference)
 * run in inference workers; here there is only orchestration, plus one
 * memcpy per golden frame into the candidate's input buffer.
 */
import { resolve, sep } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { StationConfig } from '../station/config.js';
import { ModelRunner, type ModelRunnerOptions } from '../inference/model-runner.js';
import type { LoopInference, LoopShadow } from '../station/part-loop.js';
import type { ShadowReportRows, ShadowTuple } from '../results/store-worker.js';
import { ModelRegistry, type RegistryEntry } from './model-registry.js';
import { RegistryState, refKey, sameRef, type ModelRef, type RegistryEvent } from './registry-state.js';
import { loadGoldenSet, type GoldenSet } from './golden-set.js';
import { loadFailedReport, runGate, scoreGolden, type AccuracyResult, type ValidationReport } from './validation-gate.js';
import { ShadowTap, type ShadowStats } from './shadow-tap.js';
import {
  LifecycleBusyError, ModelInUseError, ModelNotFoundError, ModelValidationFailedError, NoPreviousModelError, NoShadowError,
} from './errors.js';

/** What the lifecycle needs of the station. */
export interface LifecycleHost {
  config: StationConfig;
  runId: string;
  loop: { swapInference(next: LoopInference): Promise<LoopInference>; shadow: LoopShadow | null };
  store: { addShadow(row: ShadowTuple): void; shadowReport(q: { modelName: string; modelVersion: string; limit: number }): Promise<ShadowReportRows> };
  images: { offer(job: { seq: number; runId: string; frame: Uint8Array; verdict: 'pass' | 'reject' }): string | null };
  /**
   * A runner's options from the station's current state (config + the calibration in force:
   * station/runner-options.ts), so every runner sees the frames the live one sees.
   * `background`: a shadow or validation runner (niced).
   */
  runnerOptions(packageDir: string, background: boolean): ModelRunnerOptions;
  /** the calibration version in force (null: uncalibrated); part of the cached live golden score's key */
  calibrationVersion(): number | null;
  /** called before a swap with the new live runner (health, alarms, image map slots) */
  onLive(runner: ModelRunner): void;
  logger: Logger;
}

export interface ModelListItem extends ModelRef {
  live: boolean;
  shadow: boolean;
  /** position in the rollback stack (1 = the next rollback target), 0 = not there */
  previous: number;
  kind: string | null;
  threshold: number | null;
  description: string | null;
  problem?: string;
}

export interface ShadowReport {
  shadow: ModelRef | null;
  live: ModelRef | null;
  since: string | null;
  /** counted in memory since shadowing started (this station run) */
  stats: ShadowStats | null;
  /** from the store: every shadow verdict of this model */
  compared: number;
  agree: number;
  disagree: number;
  shadowRejectsLivePasses: number;
  shadowPassesLiveRejects: number;
  disagreements: ShadowReportRows['disagreements'];
}

const DISAGREEMENTS_LISTED = 500;

export class ModelLifecycle {
  readonly registry: ModelRegistry;
  private busy: string | null = null;
  /** settles when the operation in progress (if any) ends */
  private running: Promise<unknown> = Promise.resolve();
  /** the live model's package folder (null: not known yet, the configured one) */
  private liveDir: string | null = null;
  private tap: ShadowTap | null = null;
  private shadowRunner: ModelRunner | null = null;
  private golden: GoldenSet | null = null;
  private readonly goldenScores = new Map<string, AccuracyResult>();

  constructor(private readonly host: LifecycleHost, readonly state: RegistryState, private live: ModelRunner, private liveRef: ModelRef | null) {
    this.registry = new ModelRegistry(host.config.registry.root);
  }

  get liveRunner(): ModelRunner { return this.live; }

  /**
   * Which package the station starts with. When `model.packageDir` is a
   * package of the registry, the registry manages it: the state's live model
   * (if it still exists) wins, so a promotion survives a restart. A package
   * outside the registry root is used as configured.
   */
  static async initialPackage(config: StationConfig, state: RegistryState): Promise<{ dir: string; ref: ModelRef | null }> {
    const registry = new ModelRegistry(config.registry.root);
    const configured = resolve(config.model.packageDir);
    const managed = configured.startsWith(registry.root + sep);
    if (managed && state.live && await registry.has(state.live)) return { dir: registry.dirOf(state.live), ref: state.live };
    return { dir: configured, ref: null };
  }

  /** After start: record the configured package as live when the registry knows it and nothing else is live. */
  async adoptStartPackage(runner: ModelRunner, dir: string): Promise<void> {
    this.liveDir = resolve(dir);
    const ref = { name: runner.modelName, version: runner.modelVersion };
    const inRegistry = await this.registry.has(ref) && resolve(dir) === this.registry.dirOf(ref);
    if (!inRegistry) return; // a package from outside the registry: promotions work, nothing to adopt
    if (this.state.live === null || !sameRef(this.state.live, ref)) {
      this.state.change({ actor: 'station', action: 'adopt', model: ref, detail: 'started with the configured package' }, (d) => { d.live = ref; });
    }
    this.liveRef = ref;
  }

  // ------------------------------------------------------------ reading

  async list(): Promise<ModelListItem[]> {
    const entries = await this.registry.list();
    return entries.map((e) => this.item(e));
  }

  async show(ref: ModelRef): Promise<ModelListItem & { manifest: unknown; dir: string }> {
    const manifest = await this.registry.manifest(ref);
    return { ...this.item({ ...ref, dir: this.registry.dirOf(ref), manifest }), manifest, dir: this.registry.dirOf(ref) };
  }

  history(): readonly RegistryEvent[] { return this.state.history; }

  private item(e: RegistryEntry): ModelListItem {
    const prev = this.state.previous;
    const idx = prev.findIndex((p) => sameRef(p, e));
    return {
      name: e.name, version: e.version, live: sameRef(this.state.live, e), shadow: sameRef(this.state.shadow, e),
      previous: idx < 0 ? 0 : prev.length - idx, kind: e.manifest?.outputs.kind ?? null,
      threshold: e.manifest?.decision.threshold ?? null, description: e.manifest?.description ?? null,
      ...(e.problem ? { problem: e.problem } : {}),
    };
  }

  // ------------------------------------------------------------ changes

  /** Land a staged (already uploaded) package in the registry. */
  async push(stagingDir: string, actor: string): Promise<ModelRef> {
    return this.exclusive('push', async () => {
      const { ref } = await this.registry.addStaged(stagingDir);
      this.state.change({ actor, action: 'push', model: ref });
      return ref;
    });
  }

  /** Validate a registered package against the live model, without changing anything. */
  async validate(ref: ModelRef): Promise<ValidationReport> {
    return this.exclusive('validate', async () => {
      const { report, runner } = await this.candidate(ref);
      await runner?.close();
      return report;
    });
  }

  /** Validation gate, then an atomic swap between two parts. A refusal leaves the live model untouched. */
  async promote(ref: ModelRef, actor: string): Promise<ValidationReport> {
    return this.exclusive('promote', async () => {
      if (sameRef(this.liveRef, ref)) throw new ModelInUseError(refKey(ref), 'already live');
      const { report, runner } = await this.candidate(ref);
      if (!report.ok || !runner) {
        await runner?.close();
        this.state.change({ actor, action: 'refuse', model: ref, detail: report.reasons.join('; ') });
        throw Object.assign(new ModelValidationFailedError(refKey(ref), report.reasons.join('; ')), { report });
      }
      // the validated runner is niced (it ran beside the line): the live one is a fresh runner at normal priority
      await runner.close();
      const live = await this.createRunner(this.registry.dirOf(ref));
      const from = this.liveRef; // null: the live package is not a registry package (nothing to roll back to)
      await this.swapTo(live, this.registry.dirOf(ref));
      if (sameRef(this.state.shadow, ref)) await this.stopShadow();
      this.state.change({ actor, action: 'promote', model: ref, detail: from ? `from ${refKey(from)}` : undefined }, (d) => {
        if (from) d.previous.push(from);
        d.live = ref;
        if (sameRef(d.shadow, ref)) d.shadow = null;
      });
      this.liveRef = ref;
      return report;
    });
  }

  /** Back to the previous live model (no gate: it was live before), swapped the same way. */
  async rollback(actor: string): Promise<{ from: ModelRef | null; to: ModelRef }> {
    return this.exclusive('rollback', async () => {
      const to = this.state.previous.at(-1);
      if (!to) throw new NoPreviousModelError('no model was live before this one');
      if (!(await this.registry.has(to))) throw new ModelNotFoundError(`${refKey(to)} (the rollback target was deleted)`);
      const runner = await this.createRunner(this.registry.dirOf(to));
      const from = this.liveRef;
      await this.swapTo(runner, this.registry.dirOf(to));
      this.state.change({ actor, action: 'rollback', model: to, detail: from ? `from ${refKey(from)}` : undefined }, (d) => {
        d.previous.pop();
        d.live = to;
      });
      this.liveRef = to;
      return { from, to };
    });
  }

  /** Run a registered model beside the live one on every frame. */
  async shadow(ref: ModelRef, actor: string): Promise<ModelRef> {
    return this.exclusive('shadow', async () => {
      if (!(await this.registry.has(ref))) throw new ModelNotFoundError(refKey(ref));
      if (sameRef(this.state.live, ref)) throw new ModelInUseError(refKey(ref), 'live (shadow another version)');
      const runner = await this.createRunner(this.registry.dirOf(ref), true);
      await this.startTap(runner);
      this.state.change({ actor, action: 'shadow', model: ref }, (d) => { d.shadow = ref; });
      return ref;
    });
  }

  async unshadow(actor: string): Promise<void> {
    return this.exclusive('unshadow', async () => {
      const ref = this.state.shadow;
      if (!ref && !this.tap) throw new NoShadowError('nothing is shadowing');
      await this.stopShadow();
      this.state.change({ actor, action: 'unshadow', model: ref }, (d) => { d.shadow = null; });
    });
  }

  async remove(ref: ModelRef, actor: string): Promise<void> {
    return this.exclusive('delete', async () => {
      if (sameRef(this.state.live, ref)) throw new ModelInUseError(refKey(ref), 'live');
      if (sameRef(this.state.shadow, ref)) throw new ModelInUseError(refKey(ref), 'the shadow model');
      if (sameRef(this.state.previous.at(-1) ?? null, ref)) throw new ModelInUseError(refKey(ref), 'the rollback target');
      await this.registry.remove(ref);
      this.state.change({ actor, action: 'delete', model: ref }, (d) => { d.previous = d.previous.filter((p) => !sameRef(p, ref)); });
    });
  }

  /** Agreement of the shadow model with the live verdicts (available before promotion). */
  async report(ref?: ModelRef): Promise<ShadowReport> {
    const shadow = ref ?? this.state.shadow;
    if (!shadow) throw new NoShadowError('no model is shadowing; name one to report on');
    const rows = await this.host.store.shadowReport({ modelName: shadow.name, modelVersion: shadow.version, limit: DISAGREEMENTS_LISTED });
    const current = this.tap && sameRef(this.state.shadow, shadow);
    return {
      shadow, live: this.state.live ?? this.liveRef, since: current ? this.tap!.startedAt : null,
      stats: current ? { ...this.tap!.stats } : null, ...rows,
    };
  }

  /**
   * A new calibration is in force (the station re-read it): re-load the live model, and the
   * shadow model if one runs, with runners built from the station's current state, swapped
   * between two parts exactly as a promotion is. Waits for an operation in progress instead
   * of refusing (a calibration must not be lost to a busy registry). The live model and the
   * registry state are unchanged when a runner cannot be created (the error is thrown).
   */
  async reloadForCalibration(why: string): Promise<{ live: string; shadow: string | null }> {
    while (this.busy) await this.running.catch(() => undefined);
    return this.exclusive('recalibrate', async () => {
      const dir = this.liveDirOrConfigured();
      const next = await this.createRunner(dir);
      const shadowRef = this.state.shadow;
      let shadow: ModelRunner | null = null;
      try {
        if (this.tap && shadowRef) shadow = await this.createRunner(this.registry.dirOf(shadowRef), true);
      } catch (err) {
        await next.close();
        throw err;
      }
      await this.swapTo(next, dir);
      if (shadow) await this.startTap(shadow);
      const live = `${next.modelName}@${next.modelVersion}`;
      this.host.logger.info({ why, live, shadow: shadowRef ? refKey(shadowRef) : null, calibrationVersion: this.host.calibrationVersion() },
        'models re-loaded for a new calibration');
      return { live, shadow: shadow && shadowRef ? refKey(shadowRef) : null };
    });
  }

  /** Stop shadowing and close the shadow runner (station stop). */
  async close(): Promise<void> {
    await this.stopShadow();
  }

  // ------------------------------------------------------------ internals

  private async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new LifecycleBusyError(`${this.busy} in progress; ${what} refused`);
    this.busy = what;
    const run = (async () => {
      try {
        return await fn();
      } finally {
        this.busy = null;
      }
    })();
    this.running = run;
    return run;
  }

  /**
   * Every runner of the lifecycle (promoted, rolled back, shadow, validation, re-loaded) gets its
   * options from the station's current state. `background`: a shadow or validation runner.
   */
  private createRunner(packageDir: string, background = false): Promise<ModelRunner> {
    return ModelRunner.create(this.host.runnerOptions(packageDir, background));
  }

  private liveDirOrConfigured(): string {
    return this.liveDir ?? resolve(this.host.config.model.packageDir);
  }

  /** Hang a shadow runner on the part loop (replacing any earlier one). */
  private async startTap(runner: ModelRunner): Promise<void> {
    const old = { tap: this.tap, runner: this.shadowRunner };
    this.shadowRunner = runner;
    this.tap = new ShadowTap(runner, { store: this.host.store, images: this.host.images }, this.host.logger.child({ mod: 'shadow' }));
    this.host.loop.shadow = this.tap;
    // the old tap takes no more frames; its inference in flight settles before its runner closes
    await old.tap?.stop();
    await old.runner?.close();
  }

  private async goldenSet(): Promise<GoldenSet> {
    const { registry, camera } = this.host.config;
    this.golden ??= await loadGoldenSet(registry.goldenDir, { width: camera.width, height: camera.height }, registry.goldenImages);
    return this.golden;
  }

  /** The live model's golden-set result, scored once per model on a temporary runner (the live one is busy on the line). */
  private async liveGolden(golden: GoldenSet): Promise<{ provider: string; accuracy: AccuracyResult } | null> {
    const ref = this.liveRef ?? { name: this.live.modelName, version: this.live.modelVersion };
    // the score depends on the frames the model sees: the calibration version is part of the key
    const key = `${refKey(ref)}:${this.live.threshold}:cal${this.host.calibrationVersion() ?? 'none'}`;
    let acc = this.goldenScores.get(key);
    if (!acc) {
      const dir = this.liveDirOrConfigured();
      const runner = await this.createRunner(dir, true);
      try {
        acc = await scoreGolden(runner, golden);
      } finally {
        await runner.close();
      }
      this.goldenScores.set(key, acc);
    }
    return { provider: this.live.provider, accuracy: acc };
  }

  /** Load a registered candidate and run the gate on it; the runner comes back only when it loaded. */
  private async candidate(ref: ModelRef): Promise<{ report: ValidationReport; runner: ModelRunner | null }> {
    if (!(await this.registry.has(ref))) throw new ModelNotFoundError(refKey(ref));
    const golden = await this.goldenSet();
    let runner: ModelRunner;
    try {
      runner = await this.createRunner(this.registry.dirOf(ref), true);
    } catch (err) {
      return { report: loadFailedReport(ref, err as Error), runner: null };
    }
    try {
      const live = await this.liveGolden(golden);
      const { config } = this.host;
      const report = await runGate(ref, runner, golden, live, {
        providers: config.model.providers, latencyBudgetMs: config.registry.latencyBudgetMs ?? config.station.budgetMs,
        latencyRuns: config.registry.warmupFrames, accuracyMargin: config.registry.accuracyMargin,
      });
      this.host.logger.info({ model: refKey(ref), ok: report.ok, checks: report.checks }, 'validation gate');
      return { report, runner };
    } catch (err) {
      await runner.close();
      throw err;
    }
  }

  /** Swap the live runner between two parts; close the old one once its last part is done. */
  private async swapTo(next: ModelRunner, dir: string): Promise<void> {
    const old = this.live;
    this.live = next;
    this.liveDir = resolve(dir);
    this.host.onLive(next);
    const previous = await this.host.loop.swapInference(next);
    if (previous !== old) this.host.logger.warn('the part loop ran a model the lifecycle did not know');
    await old.close();
    this.host.logger.info({ from: `${old.modelName}@${old.modelVersion}`, to: `${next.modelName}@${next.modelVersion}` }, 'live model swapped');
  }

  private async stopShadow(): Promise<void> {
    const tap = this.tap;
    const runner = this.shadowRunner;
    this.tap = null;
    this.shadowRunner = null;
    if (this.host.loop.shadow === tap) this.host.loop.shadow = null;
    await tap?.stop();
    await runner?.close();
  }
}
