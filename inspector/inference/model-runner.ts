/**
 * Main-thread side of inference: a ModelRunner owns one inference worker
 * (inference-worker.ts) and hands it one frame at a time.
 *
 *   const runner = await ModelRunner.create({ packageDir, frame: { width: 1280, height: 1024 },
 *     providers: ['cuda', 'cpu'], intraOpNumThreads: 2, warmupRuns: 20, logger });
 *   const r = await runner.infer(frame.data);   // r.map is valid until the next infer()
 *
 * create() resolves only once the package is checked, the deployed model
 * compiled, a session created (with provider fallback), its metadata checked
 * and the warm-up outputs found finite; otherwise it rejects with the worker's
 * coded error, re-created here with the same code and message.
 *
 * Inference is serial: a second infer() while one is in flight rejects with
 * INSPECTOR_INFERENCE_BUSY (the caller serialises).
 *
 * Supervision (deadline, respawn, counters) is described in runner-supervision.ts,
 * whose RunnerSupervisor this class extends. This file keeps the frame dispatch
 * (infer() → worker → InferResult) and the package's decision figures; the options and
 * InferResult are in model-runner-types.ts, the bench figures and percentile() in
 * bench-figures.ts, all re-exported here so importers keep this one path.
 */
import * as codedErrors from '../core/errors.js';
import { reviveError } from '../core/error-transport.js';
import { FrameShapeMismatchError, InferenceBusyError } from '../core/errors.js';
import { logger as rootLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import type { SupervisedWorker } from '../core/supervised-worker.js';
import type { Manifest } from './manifest-schema.js';
import { ClassDecision, effectiveThreshold, mapCellAreaPx } from './decision-rule.js';
import { frameAlignedMapIndex } from './letterbox-map.js';
import type { FrameTransport, FromWorker, ToWorker } from './inference-worker.js';
import type { InferResult, ModelRunnerOptions } from './model-runner-types.js';
import { benchResultOf, interleavedBareOf, type BenchResult, type InterleavedBare } from './bench-figures.js';
import { RunnerSupervisor, startInferenceWorker, type ReadyMsg } from './runner-supervision.js';

export type { InferResult, ModelRunnerOptions } from './model-runner-types.js';
export type { RunnerSupervision } from './runner-supervision.js';
export { percentile, type BenchResult, type InterleavedBare } from './bench-figures.js';

export class ModelRunner extends RunnerSupervisor {
  readonly mapWidth: number;
  readonly mapHeight: number;
  readonly threshold: number;
  readonly minDefectAreaPx: number;
  readonly mapCellAreaPx: number;
  /** letterbox packages: the map resampled onto the frame is what gets saved (letterbox-map.ts); null: the map covers the frame */
  readonly mapFrameIndex: Int32Array | null;
  /** multi-class outputs: the per-class rule over `map` (K map channels or K probabilities); null: single-channel */
  readonly classRule: ClassDecision | null;
  override readonly modelName: string;
  override readonly modelVersion: string;
  readonly frameBytes: number;
  private readonly msg: { t: 'infer'; buf: ArrayBuffer | null; slot: number } = { t: 'infer', buf: null, slot: -1 };
  private readonly transferList: ArrayBuffer[] = [];

  private constructor(
    sw: SupervisedWorker<ReadyMsg>,
    readonly manifest: Manifest,
    /** info from start-up: resize notes, node placement, timings */
    ready: ReadyMsg,
    /** the shared map (Float32Array over a SharedArrayBuffer) every InferResult.map points at */
    readonly map: Float32Array,
    readonly transport: FrameTransport,
    /** the camera frame's size */
    readonly frameSize: { readonly width: number; readonly height: number },
    /** transfer: the frame ArrayBuffer while it is home (null while in flight); shared: the SAB view */
    private frameBuf: ArrayBuffer | null,
    private readonly sharedFrame: Uint8Array | null,
    log: Logger,
    private readonly inputRing: { frames: SharedArrayBuffer } | null,
    deadlineMs: number,
    testHooks: boolean,
  ) {
    super(sw, ready, log, deadlineMs, testHooks);
    const startup = ready;
    // classification: the worker puts the probabilities where the map goes (`map`, K values); there is no map
    const hasMap = manifest.outputs.map !== undefined;
    this.mapWidth = hasMap ? startup.mapWidth : 0;
    this.mapHeight = hasMap ? startup.mapHeight : 0;
    this.threshold = effectiveThreshold(manifest);
    this.minDefectAreaPx = manifest.decision.minDefectAreaPx;
    this.frameBytes = sharedFrame?.byteLength ?? frameBuf!.byteLength;
    this.mapCellAreaPx = mapCellAreaPx(manifest, frameSize.width, frameSize.height);
    this.classRule = ClassDecision.fromManifest(manifest, frameSize.width, frameSize.height);
    this.mapFrameIndex = frameAlignedMapIndex(manifest, this.mapWidth, this.mapHeight, frameSize.width, frameSize.height);
    this.modelName = manifest.name;
    this.modelVersion = manifest.version;
    sw.on('message', (m: FromWorker, generation: number) => this.onMessage(m, generation));
  }

  static async create(opts: ModelRunnerOptions): Promise<ModelRunner> {
    const log = opts.logger ?? rootLogger.child({ mod: 'inference' });
    const { width, height } = opts.frame;
    const { sw, ready, transport, frameSab, deadlineMs } = await startInferenceWorker(opts, log);
    const runner = new ModelRunner(sw, ready.manifest, ready, new Float32Array(ready.mapSab),
      transport, { width, height }, transport === 'transfer' ? new ArrayBuffer(width * height) : null,
      frameSab ? new Uint8Array(frameSab) : null, log, transport === 'shared' ? opts.inputRing ?? null : null,
      deadlineMs, opts.testHooks === true);
    log.info({
      model: `${runner.modelName}@${runner.modelVersion}`, provider: ready.provider, fallbacks: ready.fallbacks,
      placement: ready.placement, transport, preprocess: ready.preprocess, startup: ready.startup,
    }, 'model runner ready');
    return runner;
  }

  /**
   * Score one GRAY8 frame of exactly width*height bytes. The result's `map`
   * is a view of shared memory, valid until the next infer().
   */
  infer(frame: Uint8Array, ringSlot = -1): Promise<InferResult> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.sw.state !== 'ready') return Promise.reject(this.notReady());
    if (this.pending) return Promise.reject(new InferenceBusyError('one frame at a time; the caller serialises'));
    if (frame.byteLength !== this.frameBytes) {
      return Promise.reject(new FrameShapeMismatchError(`frame has ${frame.byteLength} bytes, expected ${this.frameBytes}`));
    }
    return new Promise<InferResult>((resolve, reject) => {
      this.pending = { kind: 'infer', resolve: resolve as (v: never) => void, reject, generation: this.sw.generation };
      this.deadline.refresh(); // due deadlineMs from now
      // a frame that sits in the capture ring the worker knows is read there: no copy here
      if (ringSlot >= 0 && this.inputRing && frame.buffer === this.inputRing.frames) this.sendSlot(ringSlot);
      else this.send(frame);
    });
  }

  private sendSlot(slot: number): void {
    this.msg.buf = null;
    this.msg.slot = slot;
    this.sw.post(this.msg);
  }

  /** Time session.run alone, `runs` times, inside the worker on the last frame. */
  benchBare(runs: number): Promise<BenchResult> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.sw.state !== 'ready') return Promise.reject(this.notReady());
    if (this.pending) return Promise.reject(new InferenceBusyError('benchBare while an inference is in flight'));
    return new Promise<BenchResult>((resolve, reject) => {
      // no deadline: a benchmark runs as long as it runs
      this.pending = { kind: 'bench', resolve: resolve as (v: never) => void, reject, generation: this.sw.generation };
      const buf = this.takeFrameBuf();
      // after ring frames, time the session on the last real frame already staged in the worker
      this.sw.post({ t: 'bench', runs, buf, keep: this.msg.slot >= 0 } satisfies ToWorker, buf ? [buf] : []);
    });
  }

  /**
   * Time a bare run on real frames while the line runs: every n-th part's frame is kept by the worker
   * once its result is posted, and prepared + run again `delayMs` later (0: at once), never while a
   * part is in flight (n 0: off, the default). The benchmark turns it on, with the delay between two
   * parts; it costs the worker one more run every n parts. A respawned worker starts off.
   */
  timeBareEvery(n: number, delayMs = 0): void {
    this.sw.post({ t: 'bareEvery', n, delayMs } satisfies ToWorker);
  }

  /** The interleaved bare timings so far (timeBareEvery). Not while an inference is in flight. */
  interleavedBare(): Promise<InterleavedBare> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.sw.state !== 'ready') return Promise.reject(this.notReady());
    if (this.pending) return Promise.reject(new InferenceBusyError('interleavedBare while an inference is in flight'));
    return new Promise<InterleavedBare>((resolve, reject) => {
      this.pending = { kind: 'bare', resolve: resolve as (v: never) => void, reject, generation: this.sw.generation };
      this.sw.post({ t: 'bareSamples' } satisfies ToWorker);
    });
  }

  /** A private copy of the current anomaly map. */
  copyMap(): Float32Array {
    return this.map.slice();
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  private takeFrameBuf(): ArrayBuffer | null {
    const buf = this.frameBuf;
    if (this.transport === 'transfer') this.frameBuf = null;
    return buf;
  }

  private send(frame: Uint8Array): void {
    this.msg.slot = -1;
    if (this.transport === 'shared') {
      this.sharedFrame!.set(frame);
      this.msg.buf = null;
      this.sw.post(this.msg);
      return;
    }
    const buf = this.takeFrameBuf()!;
    new Uint8Array(buf).set(frame);
    this.msg.buf = buf;
    this.transferList[0] = buf;
    this.sw.post(this.msg, this.transferList);
  }

  private onMessage(m: FromWorker, generation: number): void {
    if ('buf' in m && m.buf) this.frameBuf = m.buf;
    // the supervisor passes on the current worker's messages only; a request posted to an earlier one is never answered here
    const p = this.pending && this.pending.generation === generation ? this.pending : null;
    switch (m.t) {
      case 'log': this.log[m.level](m.obj, m.msg); return;
      case 'result':
        if (!p) return;
        this.pending = null;
        if (!Number.isFinite(m.score) && m.registration?.ok !== false) {
          p.reject(new codedErrors.ModelOutputInvalidError(`score is ${m.score}`));
          return;
        }
        (p.resolve as (v: InferResult) => void)({
          score: m.score, inferenceMs: m.inferenceMs, startNs: m.startNs, endNs: m.endNs, map: this.map, mapWidth: this.mapWidth, mapHeight: this.mapHeight,
          ...(m.registration ? { registration: m.registration } : {}),
        });
        return;
      case 'bench':
        if (!p) return;
        this.pending = null;
        (p.resolve as (v: BenchResult) => void)(benchResultOf(m));
        return;
      case 'bareSamples':
        if (!p || p.kind !== 'bare') return;
        this.pending = null;
        (p.resolve as (v: InterleavedBare) => void)(interleavedBareOf(m));
        return;
      case 'inferError':
        if (!p) return;
        this.pending = null;
        p.reject(reviveError(m.error, 'the inference worker'));
        return;
      default:
        return;
    }
  }

  /** A respawned worker is ready (runner-supervision.ts onRespawned). */
  protected override replaceLostFrameBuffer(): void {
    // the frame buffer went down with a worker that held it
    if (this.transport === 'transfer' && !this.frameBuf) this.frameBuf = new ArrayBuffer(this.frameBytes);
  }
}
