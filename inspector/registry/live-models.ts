/**
 * The swap mechanics of the model lifecycle (main thread): which runner is live, which one
 * shadows it, and how they are replaced while the line runs.
 *
 * - `swapTo`: `PartLoop.swapInference` switches between two parts (each part reads the model
 *   once), and the old runner is closed only after the part it was scoring is done.
 * - `startTap` / `stopShadow`: hang a shadow runner on the part loop (a `ShadowTap`), or take
 *   it off; an old tap takes no more frames and its inference in flight settles before its
 *   runner closes.
 * - `createRunner`: every runner (promoted, rolled back, shadow, validation, re-loaded) gets its
 *   options from the station's current state (`LifecycleHost.runnerOptions`).
 *
 * No decisions here: the operations (lifecycle.ts) decide what to swap, and when.
 */
import { resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { StationConfig } from '../station/config.js';
import { ModelRunner, type ModelRunnerOptions } from '../inference/model-runner.js';
import type { LoopInference, LoopShadow } from '../station/part-loop.js';
import type { ShadowReportRows, ShadowTuple } from '../results/store-worker.js';
import type { ModelRef } from './registry-state.js';
import { ShadowTap } from './shadow-tap.js';

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

export class LiveModels {
  /** the live model's package folder (null: not known yet, the configured one) */
  liveDir: string | null = null;
  /** the shadow model's tap on the part loop and its runner (null: nothing shadows) */
  tap: ShadowTap | null = null;
  shadowRunner: ModelRunner | null = null;

  constructor(
    private readonly host: LifecycleHost,
    /** the live runner */
    public live: ModelRunner,
    /** the live model's registry reference (null: a package from outside the registry) */
    public liveRef: ModelRef | null,
  ) {}

  /**
   * Every runner of the lifecycle (promoted, rolled back, shadow, validation, re-loaded) gets its
   * options from the station's current state. `background`: a shadow or validation runner.
   */
  createRunner(packageDir: string, background = false): Promise<ModelRunner> {
    return ModelRunner.create(this.host.runnerOptions(packageDir, background));
  }

  liveDirOrConfigured(): string {
    return this.liveDir ?? resolve(this.host.config.model.packageDir);
  }

  /** Swap the live runner between two parts; close the old one once its last part is done. */
  async swapTo(next: ModelRunner, dir: string): Promise<void> {
    const old = this.live;
    this.live = next;
    this.liveDir = resolve(dir);
    this.host.onLive(next);
    const previous = await this.host.loop.swapInference(next);
    if (previous !== old) this.host.logger.warn('the part loop ran a model the lifecycle did not know');
    await old.close();
    this.host.logger.info({ from: `${old.modelName}@${old.modelVersion}`, to: `${next.modelName}@${next.modelVersion}` }, 'live model swapped');
  }

  /** Hang a shadow runner on the part loop (replacing any earlier one). */
  async startTap(runner: ModelRunner): Promise<void> {
    const old = { tap: this.tap, runner: this.shadowRunner };
    this.shadowRunner = runner;
    this.tap = new ShadowTap(runner, { store: this.host.store, images: this.host.images }, this.host.logger.child({ mod: 'shadow' }));
    this.host.loop.shadow = this.tap;
    // the old tap takes no more frames; its inference in flight settles before its runner closes
    await old.tap?.stop();
    await old.runner?.close();
  }

  /** Take the shadow tap off the part loop and close its runner (nothing shadowing: no-op). */
  async stopShadow(): Promise<void> {
    const tap = this.tap;
    const runner = this.shadowRunner;
    this.tap = null;
    this.shadowRunner = null;
    if (this.host.loop.shadow === tap) this.host.loop.shadow = null;
    await tap?.stop();
    await runner?.close();
  }
}
