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
 * INSPECTOR_INFERENCE_BUSY (the caller serialises). If the worker dies,
 * pending and later calls reject with INSPECTOR_INFERENCE_WORKER_EXITED and the
 * runner emits 'error' (logged instead when nobody listens).
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import * as codedErrors from '../core/errors.js';
import { reviveError } from '../core/error-transport.js';
import { FrameShapeMismatchError, InferenceBusyError, InferenceWorkerExitedError, InferenceClosedError } from '../core/errors.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
import type { Manifest } from './manifest-schema.js';
import { ClassDecision, effectiveThreshold, mapCellAreaPx } from './decision-rule.js';
import { frameAlignedMapIndex } from './letterbox-map.js';
import type { RegistrationFigures } from '../teach/frame-registration.js';
import type { ProviderFallback } from './providers.js';
import { validateProviders } from './providers.js';
import {
  WORKER_KIND, type FrameTransport, type FromWorker, type ToWorker, type WorkerInit,
} from './inference-worker.js';

// Runner-specific codes (candidates for core/errors.ts).



export interface ModelRunnerOptions {
  packageDir: string;
  frame: { width: number; height: number };
  providers: readonly string[];
  intraOpNumThreads: number;
  warmupRuns: number;
  logger?: Logger;
  /** how frames reach the worker; see inference-worker.ts (default 'transfer', the cheaper one) */
  transport?: FrameTransport;
  /** 'graph' forces the compiled ONNX preprocessing (default 'auto': JS area binning where it applies) */
  preprocess?: 'auto' | 'graph';
  /** nice value of the worker thread (e.g. 10 for shadow and validation runners); default 0 */
  nice?: number;
  /** shared transport: the capture ring, so `infer(frame, slot)` skips the main-thread copy */
  inputRing?: { frames: SharedArrayBuffer; slots: number; slotBytes: number };
  /** extra ORT session options merged over the defaults (e.g. `extra` config entries) */
  sessionOptions?: InferenceSession.SessionOptions;
  /** the station's lens calibration: frames are undistorted right after binning (see inference-worker.ts) */
  undistort?: WorkerInit['undistort'];
}

export interface InferResult {
  score: number;
  /** session.run inside the worker (preprocessing graph + model) */
  inferenceMs: number;
  /** VIEW of shared memory, overwritten by the next infer(): copy it (runner.copyMap()) to keep it */
  map: Float32Array;
  mapWidth: number;
  mapHeight: number;
  /**
   * Packages with a manifest `registration`: this frame's registration (the worker's object,
   * overwritten by the next infer()). ok=false: the frame could not be registered, score is NaN.
   */
  registration?: RegistrationFigures | null;
}

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

type Pending = { kind: 'infer' | 'bench'; resolve: (v: never) => void; reject: (e: Error) => void };

export class ModelRunner extends EventEmitter {
  readonly mapWidth: number;
  readonly mapHeight: number;
  readonly threshold: number;
  readonly minDefectAreaPx: number;
  readonly mapCellAreaPx: number;
  /** letterbox packages: the map resampled onto the frame is what gets saved (letterbox-map.ts); null: the map covers the frame */
  readonly mapFrameIndex: Int32Array | null;
  /** multi-class outputs: the per-class rule over `map` (K map channels or K probabilities); null: single-channel */
  readonly classRule: ClassDecision | null;
  readonly modelName: string;
  readonly modelVersion: string;
  readonly frameBytes: number;
  private pending: Pending | null = null;
  private gone: Error | null = null;
  private readonly msg: { t: 'infer'; buf: ArrayBuffer | null; slot: number } = { t: 'infer', buf: null, slot: -1 };
  private readonly transferList: ArrayBuffer[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly provider: string,
    readonly fallbacks: readonly ProviderFallback[],
    readonly manifest: Manifest,
    /** info from start-up: resize notes, node placement, timings */
    readonly startup: Extract<FromWorker, { t: 'ready' }>,
    /** the shared map (Float32Array over a SharedArrayBuffer) every InferResult.map points at */
    readonly map: Float32Array,
    readonly transport: FrameTransport,
    /** the camera frame's size */
    readonly frameSize: { readonly width: number; readonly height: number },
    /** transfer: the frame ArrayBuffer while it is home (null while in flight); shared: the SAB view */
    private frameBuf: ArrayBuffer | null,
    private readonly sharedFrame: Uint8Array | null,
    private readonly log: Logger,
    private readonly inputRing: { frames: SharedArrayBuffer } | null = null,
  ) {
    super();
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
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.die(`uncaught error: ${err.message}`));
    worker.on('exit', (code) => this.die(`exited with code ${code}`));
  }

  static async create(opts: ModelRunnerOptions): Promise<ModelRunner> {
    const log = opts.logger ?? rootLogger.child({ mod: 'inference' });
    const { width, height } = opts.frame;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new FrameShapeMismatchError(`frame geometry ${width}x${height} is not a positive integer size`);
    }
    const providers = validateProviders(opts.providers);
    const transport = opts.transport ?? 'transfer';
    const frameSab = transport === 'shared' ? new SharedArrayBuffer(width * height) : null;
    const init: WorkerInit = {
      kind: WORKER_KIND, packageDir: opts.packageDir, frame: { width, height }, providers,
      intraOpNumThreads: opts.intraOpNumThreads, warmupRuns: opts.warmupRuns, transport, frameSab,
      inputRing: transport === 'shared' ? opts.inputRing ?? null : null,
      preprocess: opts.preprocess ?? 'auto', nice: opts.nice ?? 0, undistort: opts.undistort ?? null,
      ...(opts.sessionOptions ? { sessionOptions: opts.sessionOptions } : {}),
    };
    const worker = spawnTsWorker(new URL('./inference-worker.ts', import.meta.url), init, { name: 'inference' });
    const ready = await new Promise<Extract<FromWorker, { t: 'ready' }>>((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.t === 'log') log[m.level](m.obj, m.msg);
        else if (m.t === 'ready') { cleanup(); resolve(m); }
        else if (m.t === 'error') { cleanup(); reject(reviveError(m.error, 'the inference worker')); }
      };
      const onError = (err: Error): void => { cleanup(); reject(new InferenceWorkerExitedError(`failed to start: ${err.message}`)); };
      const onExit = (code: number): void => { cleanup(); reject(new InferenceWorkerExitedError(`exited with code ${code} during start-up`)); };
      const cleanup = (): void => { worker.off('message', onMessage).off('error', onError).off('exit', onExit); };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    const runner = new ModelRunner(worker, ready.provider, ready.fallbacks, ready.manifest, ready, new Float32Array(ready.mapSab),
      transport, { width, height }, transport === 'transfer' ? new ArrayBuffer(width * height) : null,
      frameSab ? new Uint8Array(frameSab) : null, log, transport === 'shared' ? opts.inputRing ?? null : null);
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
    if (this.pending) return Promise.reject(new InferenceBusyError('one frame at a time; the caller serialises'));
    if (frame.byteLength !== this.frameBytes) {
      return Promise.reject(new FrameShapeMismatchError(`frame has ${frame.byteLength} bytes, expected ${this.frameBytes}`));
    }
    return new Promise<InferResult>((resolve, reject) => {
      this.pending = { kind: 'infer', resolve: resolve as (v: never) => void, reject };
      // a frame that sits in the capture ring the worker knows is read there: no copy here
      if (ringSlot >= 0 && this.inputRing && frame.buffer === this.inputRing.frames) this.sendSlot(ringSlot);
      else this.send(frame);
    });
  }

  private sendSlot(slot: number): void {
    this.msg.buf = null;
    this.msg.slot = slot;
    this.worker.postMessage(this.msg);
  }

  /** Time session.run alone, `runs` times, inside the worker on the last frame. */
  benchBare(runs: number): Promise<BenchResult> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.pending) return Promise.reject(new InferenceBusyError('benchBare while an inference is in flight'));
    return new Promise<BenchResult>((resolve, reject) => {
      this.pending = { kind: 'bench', resolve: resolve as (v: never) => void, reject };
      const buf = this.takeFrameBuf();
      // after ring frames, time the session on the last real frame already staged in the worker
      this.worker.postMessage({ t: 'bench', runs, buf, keep: this.msg.slot >= 0 } satisfies ToWorker, buf ? [buf] : []);
    });
  }

  /** A private copy of the current anomaly map. */
  copyMap(): Float32Array {
    return this.map.slice();
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  /** Test hook: make the worker throw an uncaught error. */
  simulateWorkerCrash(): void {
    this.worker.postMessage({ t: 'crash' } satisfies ToWorker);
  }

  async close(): Promise<void> {
    if (!this.gone) this.gone = new InferenceClosedError('close() was called');
    this.failPending(this.gone);
    this.worker.removeAllListeners('exit');
    this.worker.removeAllListeners('error');
    this.worker.on('error', () => { /* closing: nothing to report */ });
    await this.worker.terminate();
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
      this.worker.postMessage(this.msg);
      return;
    }
    const buf = this.takeFrameBuf()!;
    new Uint8Array(buf).set(frame);
    this.msg.buf = buf;
    this.transferList[0] = buf;
    this.worker.postMessage(this.msg, this.transferList);
  }

  private onMessage(m: FromWorker): void {
    if ('buf' in m && m.buf) this.frameBuf = m.buf;
    const p = this.pending;
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
          score: m.score, inferenceMs: m.inferenceMs, map: this.map, mapWidth: this.mapWidth, mapHeight: this.mapHeight,
          ...(m.registration ? { registration: m.registration } : {}),
        });
        return;
      case 'bench':
        if (!p) return;
        this.pending = null;
        (p.resolve as (v: BenchResult) => void)({ p50: percentile(m.samples, 0.5), p99: percentile(m.samples, 0.99), samples: m.samples,
          withPreprocess: { p50: percentile(m.withPreprocess, 0.5), p99: percentile(m.withPreprocess, 0.99) } });
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

  private failPending(err: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  private die(why: string): void {
    if (this.gone) return;
    const err = new InferenceWorkerExitedError(why);
    this.gone = err;
    this.failPending(err);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log.error({ err }, 'inference worker died (no error listener on the runner)');
  }
}
