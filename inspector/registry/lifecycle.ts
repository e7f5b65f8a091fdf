/**
 * The model lifecycle, in the station's main thread: push, list, show,
 * shadow, promote (through the validation gate), roll back, delete. One
 * operation at a time (a second one while one runs is refused with
 * INSPECTOR_MODEL_LIFECYCLE_BUSY); every change is written to the registry
 * state (pointers + history with who and when, and the signer's key id for
 * push, promote and shadow).
 *
 * Push, validate, promote and shadow verify the package's signature
 * (signing.ts, `registry.trustedKeys` / `registry.requireSignatures`) before
 * anything of it loads: a refusal leaves the live model untouched (promote and
 * shadow record it as a `refuse` event). Rollback does not: its target was
 * live before (verified when it was promoted, or the configured package).
 *
 * This file holds the operations: what may change, and the state it leaves.
 * The mechanics live beside it:
 *  - live-models.ts: the live and shadow runners, the swap between two parts
 *    (`PartLoop.swapInference`; the old runner is closed only after the part it
 *    was scoring is done), the shadow tap;
 *  - candidate-gate.ts: a candidate through the validation gate against the
 *    live model's (cached) golden-set result; a refused candidate is closed and
 *    the live model never noticed;
 *  - calibration-models.ts: the live and shadow models re-loaded for a new lens.
 *
 * The heavy parts (package checks, sessions, warm-up, golden-set inference)
 * run in inference workers; here there is only orchestration, plus one
 * memcpy per golden frame into the candidate's input buffer.
 */
import { resolve, sep } from 'node:path';
import type { StationConfig } from '../station/config.js';
import type { ModelRunner } from '../inference/model-runner.js';
import type { ShadowReportRows } from '../results/store-worker.js';
import { ModelRegistry, type RegistryEntry } from './model-registry.js';
import { SIGNATURE_CODES, signaturePolicy, verifyPackage } from './signing.js';
import { RegistryState, refKey, sameRef, type ModelRef, type RegistryEvent } from './registry-state.js';
import type { ValidationReport } from './validation-gate.js';
import type { ShadowStats } from './shadow-tap.js';
import { LiveModels, type LifecycleHost } from './live-models.js';
import { CandidateGate } from './candidate-gate.js';
import { reloadModelsForCalibration, type CalibrationModels } from './calibration-models.js';
import {
  LifecycleBusyError, ModelInUseError, ModelNotFoundError, ModelValidationFailedError, NoPreviousModelError, NoShadowError,
} from './errors.js';

export type { LifecycleHost } from './live-models.js';

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

/** A registry reference and the key id its package is signed with (null: unsigned). */
export type SignedRef = ModelRef & { signer: string | null };

export class ModelLifecycle {
  readonly registry: ModelRegistry;
  private busy: string | null = null;
  /** settles when the operation in progress (if any) ends */
  private running: Promise<unknown> = Promise.resolve();
  /** the live and shadow runners and how they are swapped */
  private readonly models: LiveModels;
  private readonly gate: CandidateGate;

  constructor(private readonly host: LifecycleHost, readonly state: RegistryState, live: ModelRunner, liveRef: ModelRef | null) {
    this.registry = new ModelRegistry(host.config.registry.root, signaturePolicy(host.config.registry));
    this.models = new LiveModels(host, live, liveRef);
    this.gate = new CandidateGate(host, this.registry, this.models);
  }

  get liveRunner(): ModelRunner { return this.models.live; }

  /**
   * Which package the station starts with. When `model.packageDir` is a
   * package of the registry, the registry manages it: the state's live model
   * (if it still exists) wins, so a promotion survives a restart. A package
   * outside the registry root is used as configured.
   *
   * The state's live package is verified like a promotion (signing.ts) before
   * anything loads it: a refusal is the station's start-up error. The configured
   * package is the config author's choice and is not.
   */
  static async initialPackage(config: StationConfig, state: RegistryState): Promise<{ dir: string; ref: ModelRef | null }> {
    const registry = new ModelRegistry(config.registry.root, signaturePolicy(config.registry));
    const configured = resolve(config.model.packageDir);
    const managed = configured.startsWith(registry.root + sep);
    if (managed && state.live && await registry.has(state.live)) {
      const dir = registry.dirOf(state.live);
      if (dir !== configured) await verifyPackage(dir, registry.policy);
      return { dir, ref: state.live };
    }
    return { dir: configured, ref: null };
  }

  /** After start: record the configured package as live when the registry knows it and nothing else is live. */
  async adoptStartPackage(runner: ModelRunner, dir: string): Promise<void> {
    this.models.liveDir = resolve(dir);
    const ref = { name: runner.modelName, version: runner.modelVersion };
    const inRegistry = await this.registry.has(ref) && resolve(dir) === this.registry.dirOf(ref);
    if (!inRegistry) return; // a package from outside the registry: promotions work, nothing to adopt
    if (this.state.live === null || !sameRef(this.state.live, ref)) {
      this.state.change({ actor: 'station', action: 'adopt', model: ref, detail: 'started with the configured package' }, (d) => { d.live = ref; });
    }
    this.models.liveRef = ref;
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

  /** Land a staged (already uploaded) package in the registry: signature, then the package checks (ModelRegistry.addStaged). */
  async push(stagingDir: string, actor: string): Promise<SignedRef> {
    return this.exclusive('push', async () => {
      const { ref, signer } = await this.registry.addStaged(stagingDir);
      const keyId = signer?.keyId ?? null;
      this.state.change({ actor, action: 'push', model: ref, signer: keyId });
      return { ...ref, signer: keyId };
    });
  }

  /**
   * Verify a registered package's signature before anything of it loads; with an
   * actor, a signature refusal is recorded (`refuse`) before it is thrown.
   */
  private async verified(ref: ModelRef, actor?: string): Promise<string | null> {
    try {
      return (await this.registry.verify(ref))?.keyId ?? null;
    } catch (err) {
      const e = err as Error & { code?: string };
      if (actor && SIGNATURE_CODES.has(e.code ?? '')) {
        this.state.change({ actor, action: 'refuse', model: ref, detail: `${e.code}: ${e.message}` });
      }
      throw err;
    }
  }

  /** Validate a registered package against the live model, without changing anything. */
  async validate(ref: ModelRef): Promise<ValidationReport> {
    return this.exclusive('validate', async () => {
      const signer = await this.verified(ref);
      const { report, runner } = await this.gate.candidate(ref);
      await runner?.close();
      return { ...report, signer };
    });
  }

  /** Validation gate, then an atomic swap between two parts. A refusal leaves the live model untouched. */
  async promote(ref: ModelRef, actor: string): Promise<ValidationReport> {
    return this.exclusive('promote', async () => {
      if (sameRef(this.models.liveRef, ref)) throw new ModelInUseError(refKey(ref), 'already live');
      const signer = await this.verified(ref, actor); // before the gate creates a session
      const { report, runner } = await this.gate.candidate(ref);
      if (!report.ok || !runner) {
        await runner?.close();
        this.state.change({ actor, action: 'refuse', model: ref, detail: report.reasons.join('; '), signer });
        throw Object.assign(new ModelValidationFailedError(refKey(ref), report.reasons.join('; ')), { report: { ...report, signer } });
      }
      // the validated runner is niced (it ran beside the line): the live one is a fresh runner at normal priority
      await runner.close();
      const live = await this.models.createRunner(this.registry.dirOf(ref));
      const from = this.models.liveRef; // null: the live package is not a registry package (nothing to roll back to)
      await this.models.swapTo(live, this.registry.dirOf(ref));
      if (sameRef(this.state.shadow, ref)) await this.models.stopShadow();
      this.state.change({ actor, action: 'promote', model: ref, detail: from ? `from ${refKey(from)}` : undefined, signer }, (d) => {
        if (from) d.previous.push(from);
        d.live = ref;
        if (sameRef(d.shadow, ref)) d.shadow = null;
      });
      this.models.liveRef = ref;
      return { ...report, signer };
    });
  }

  /** Back to the previous live model (no gate: it was live before), swapped the same way. */
  async rollback(actor: string): Promise<{ from: ModelRef | null; to: ModelRef }> {
    return this.exclusive('rollback', async () => {
      const to = this.state.previous.at(-1);
      if (!to) throw new NoPreviousModelError('no model was live before this one');
      if (!(await this.registry.has(to))) throw new ModelNotFoundError(`${refKey(to)} (the rollback target was deleted)`);
      const runner = await this.models.createRunner(this.registry.dirOf(to));
      const from = this.models.liveRef;
      await this.models.swapTo(runner, this.registry.dirOf(to));
      this.state.change({ actor, action: 'rollback', model: to, detail: from ? `from ${refKey(from)}` : undefined }, (d) => {
        d.previous.pop();
        d.live = to;
      });
      this.models.liveRef = to;
      return { from, to };
    });
  }

  /** Run a registered model beside the live one on every frame. */
  async shadow(ref: ModelRef, actor: string): Promise<SignedRef> {
    return this.exclusive('shadow', async () => {
      if (!(await this.registry.has(ref))) throw new ModelNotFoundError(refKey(ref));
      if (sameRef(this.state.live, ref)) throw new ModelInUseError(refKey(ref), 'live (shadow another version)');
      const signer = await this.verified(ref, actor);
      const runner = await this.models.createRunner(this.registry.dirOf(ref), true);
      await this.models.startTap(runner);
      this.state.change({ actor, action: 'shadow', model: ref, signer }, (d) => { d.shadow = ref; });
      return { ...ref, signer };
    });
  }

  async unshadow(actor: string): Promise<void> {
    return this.exclusive('unshadow', async () => {
      const ref = this.state.shadow;
      if (!ref && !this.models.tap) throw new NoShadowError('nothing is shadowing');
      await this.models.stopShadow();
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
    const tap = this.models.tap;
    const current = tap && sameRef(this.state.shadow, shadow);
    return {
      shadow, live: this.state.live ?? this.models.liveRef, since: current ? tap.startedAt : null,
      stats: current ? { ...tap.stats } : null, ...rows,
    };
  }

  /**
   * A new calibration is in force (the station re-read it): re-load the live model, and the
   * shadow model if one runs, with runners built from the station's current state, swapped
   * between two parts exactly as a promotion is (calibration-models.ts). Waits for an operation
   * in progress instead of refusing (a calibration must not be lost to a busy registry). The
   * live model and the registry state are unchanged when a runner cannot be created (the error
   * is thrown).
   */
  async reloadForCalibration(why: string): Promise<CalibrationModels> {
    while (this.busy) await this.running.catch(() => undefined);
    return this.exclusive('recalibrate', () => reloadModelsForCalibration(this.models, this.state, this.registry, this.host, why));
  }

  /** Stop shadowing and close the shadow runner (station stop). */
  async close(): Promise<void> {
    await this.models.stopShadow();
  }

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
}
