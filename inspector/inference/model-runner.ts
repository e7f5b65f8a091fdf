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
 * Supervision (core/supervised-worker.ts): every infer() has a deadline
 * (`deadlineMs`, default 1000 ms). No answer in time: it rejects with
 * INSPECTOR_INFERENCE_TIMEOUT (the part is a fail-safe reject) and the hung worker
 * is killed. A worker that dies or is killed is respawned with the same package
 * (already validated; shorter warm-up, same shared map) after a backoff; meanwhile
 * the pending call and every later one reject at once with
 * INSPECTOR_INFERENCE_WORKER_EXITED until the new worker is ready. A late answer of
 * a killed worker is dropped (generations). Each death: 'worker-death'
 * ({ reason, generation, deaths }) and 'error' (InferenceWorkerExitedError; logged
 * instead when nobody listens); each respawned worker ready: 'worker-ready'
 * ({ generation, restarts }). Counters: `runner.supervision`.
 */
import { EventEmitter } from 'node:events';
import type { InferenceSession } from 'onnxruntime-node';
import * as codedErrors from '../core/errors.js';
import { reviveError } from '../core/error-transport.js';
import {
  FrameShapeMismatchError, InferenceBusyError, InferenceWorkerExitedError, InferenceClosedError, InferenceTimeoutError,
} from '../core/errors.js';
import { logger as rootLogger, type Logger } from '../core/logger.js';
import { SupervisedWorker, type BackoffOptions } from '../core/supervised-worker.js';
import { threadNice } from '../core/thread-priority.js';
import type { Manifest } from './manifest-schema.js';
import { ClassDecision, effectiveThreshold, mapCellAreaPx } from './decision-rule.js';
import { frameAlignedMapIndex } from './letterbox-map.js';
import type { RegistrationFigures } from '../teach/frame-registration.js';
import type { ProviderFallback } from './providers.js';
import { validateProviders } from './providers.js';
import {
  WORKER_KIND, type FrameTransport, type FromWorker, type ToWorker, type WorkerInit,
} from './inference-worker.js';

const WORKER_URL = new URL('./inference-worker.ts', import.meta.url);
/** warm-up runs of a respawned worker (the package was validated by the first start) */
const RESTART_WARMUP_RUNS = 2;

type ReadyMsg = Extract<FromWorker, { t: 'ready' }>;

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
  /** an infer() not answered within this rejects with INSPECTOR_INFERENCE_TIMEOUT and the worker is respawned (default 1000) */
  deadlineMs?: number;
  /** backoff of the respawns (default 200 ms doubling up to 30 s, ±20 %) */
  restartBackoff?: Partial<BackoffOptions>;
  /** a (re)start that is not ready within this fails (default 300 s: TensorRT engine builds are slow) */
  startTimeoutMs?: number;
  /** tests only, never in a station config: the worker obeys debugHang()/debugCrash() */
  testHooks?: boolean;
  /** TensorRT engines are built into / taken from this cache root when the worker starts (trt-engine-cache.ts) */
  trtEngineCacheDir?: string;
}

/** Supervision counters of one runner (all its workers together). */
export interface RunnerSupervision {
  /** workers that exited, crashed, failed a restart or were killed */
  deaths: number;
  /** respawned workers that got ready */
  restarts: number;
  /** infer() calls that missed the deadline */
  timeouts: number;
}

export interface InferResult {
  score: number;
  /** session.run inside the worker (preprocessing graph + model) */
  inferenceMs: number;
  /** when the worker started and ended this job, CLOCK_MONOTONIC ns (process.hrtime.bigint(): one clock for every thread and process) */
  startNs: bigint;
  endNs: bigint;
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

/** Bare timings taken on real frames, interleaved with the line (`timeBareEvery`). */
export interface InterleavedBare {
  count: number;
  /** session.run alone */
  run: { p50: number; p99: number };
  /** the frame's preprocessing (binning, registration, lens table) + session.run */
  withPreprocess: { p50: number; p99: number };
}

type Pending = { kind: 'infer' | 'bench' | 'bare'; resolve: (v: never) => void; reject: (e: Error) => void; generation: number };

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
  readonly deadlineMs: number;
  readonly supervision: RunnerSupervision = { deaths: 0, restarts: 0, timeouts: 0 };
  /** the worker's provider, its fallbacks and start-up info (a respawned worker's replace them) */
  provider: string;
  fallbacks: readonly ProviderFallback[];
  startup: ReadyMsg;
  private pending: Pending | null = null;
  /** close() was called */
  private gone: Error | null = null;
  /** the one deadline timer, re-armed by refresh() for each infer() (no per-frame allocation) */
  private readonly deadline: NodeJS.Timeout;
  private readonly msg: { t: 'infer'; buf: ArrayBuffer | null; slot: number } = { t: 'infer', buf: null, slot: -1 };
  private readonly transferList: ArrayBuffer[] = [];

  private constructor(
    private readonly sw: SupervisedWorker<ReadyMsg>,
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
    private readonly log: Logger,
    private readonly inputRing: { frames: SharedArrayBuffer } | null,
    deadlineMs: number,
    private readonly testHooks: boolean,
  ) {
    super();
    const startup = ready;
    this.startup = ready;
    this.provider = ready.provider;
    this.fallbacks = ready.fallbacks;
    this.deadlineMs = deadlineMs;
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
    this.deadline = setTimeout(() => this.onDeadline(), deadlineMs);
    this.deadline.unref(); // re-armed by each infer(); firing with nothing pending is a no-op
    sw.on('message', (m: FromWorker, generation: number) => this.onMessage(m, generation));
    sw.on('death', (d: { reason: string; generation: number; deaths: number }) => this.onDeath(d));
    sw.on('restarting', (r: { attempt: number; delayMs: number }) => {
      this.log.warn({ model: `${this.modelName}@${this.modelVersion}`, ...r }, 'inference worker: respawning');
      this.emit('worker-restarting', r);
    });
    sw.on('ready', (m: ReadyMsg, info: { generation: number; restart: boolean }) => { if (info.restart) this.onRespawned(m, info.generation); });
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
      ...(opts.testHooks ? { testHooks: true } : {}),
      ...(opts.trtEngineCacheDir ? { trtEngineCacheDir: opts.trtEngineCacheDir } : {}),
    };
    const deadlineMs = opts.deadlineMs ?? 1000;
    if (!(deadlineMs > 0)) throw new codedErrors.ConfigInvalidError(`deadlineMs must be > 0, got ${deadlineMs}`);
    let mapSab: SharedArrayBuffer | null = null; // the first worker's map: its successors write into the same one
    const sw = new SupervisedWorker<ReadyMsg>({
      name: 'inference', url: WORKER_URL,
      workerData: (start): WorkerInit => (start === 0 ? init
        : { ...init, mapSab, warmupRuns: Math.min(init.warmupRuns, RESTART_WARMUP_RUNS) }),
      ready: (m) => ((m as FromWorker).t === 'ready' ? m as ReadyMsg : undefined),
      startError: (m) => ((m as FromWorker).t === 'error' ? reviveError((m as Extract<FromWorker, { t: 'error' }>).error, 'the inference worker') : undefined),
      startFailure: (reason) => new InferenceWorkerExitedError(reason),
      startTimeoutMs: opts.startTimeoutMs ?? 300_000,
      ...(opts.restartBackoff ? { backoff: opts.restartBackoff } : {}),
      // the live runner is on the hot path; shadow/validation runners (opts.nice > 0) lower themselves in the worker
      workerOptions: { nice: opts.nice ? threadNice('normal') : threadNice('hot') },
    });
    const startLog = (m: FromWorker): void => { if (m.t === 'log') log[m.level](m.obj, m.msg); };
    sw.on('message', startLog);
    const ready = await sw.start();
    sw.off('message', startLog);
    mapSab = ready.mapSab;
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

  /** The error of a call made while the worker is being respawned. */
  private notReady(): Error {
    return new InferenceWorkerExitedError(`respawning after: ${this.sw.lastDeathReason ?? 'a death'}`);
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

  /** Which worker serves now: 1 for the first, +1 per respawn. */
  get generation(): number {
    return this.sw.generation;
  }

  /** 'ready', 'restarting' (a respawn pending or starting) or 'closed'. */
  get workerState(): 'ready' | 'restarting' | 'closed' {
    const s = this.sw.state;
    return s === 'ready' || s === 'closed' ? s : 'restarting';
  }

  /** Test hook: make the worker throw an uncaught error. */
  simulateWorkerCrash(): void {
    this.sw.post({ t: 'crash' } satisfies ToWorker);
  }

  /** Test hook (testHooks: true only): block the worker thread for `ms` (Atomics.wait), as a hung session would. */
  debugHang(ms: number): void {
    this.requireTestHooks('debugHang');
    this.sw.post({ t: 'debug-hang', ms } satisfies ToWorker);
  }

  /** Test hook (testHooks: true only): the worker calls process.exit(1). */
  debugCrash(): void {
    this.requireTestHooks('debugCrash');
    this.sw.post({ t: 'debug-exit' } satisfies ToWorker);
  }

  private requireTestHooks(what: string): void {
    if (!this.testHooks) throw new codedErrors.ConfigInvalidError(`${what}() is a test hook: create the runner with testHooks: true`);
  }

  async close(): Promise<void> {
    if (!this.gone) this.gone = new InferenceClosedError('close() was called');
    clearTimeout(this.deadline);
    this.failPending(this.gone);
    await this.sw.close();
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
        (p.resolve as (v: BenchResult) => void)({ p50: percentile(m.samples, 0.5), p99: percentile(m.samples, 0.99), samples: m.samples,
          withPreprocess: { p50: percentile(m.withPreprocess, 0.5), p99: percentile(m.withPreprocess, 0.99) } });
        return;
      case 'bareSamples':
        if (!p || p.kind !== 'bare') return;
        this.pending = null;
        (p.resolve as (v: InterleavedBare) => void)({ count: m.run.length,
          run: { p50: percentile(m.run, 0.5), p99: percentile(m.run, 0.99) },
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

  /** No answer within deadlineMs: the part fails safe, the (hung) worker is killed and respawned. */
  private onDeadline(): void {
    const p = this.pending;
    if (!p || p.kind !== 'infer' || this.gone) return;
    this.pending = null;
    this.supervision.timeouts++;
    const why = `no answer within ${this.deadlineMs} ms (worker ${p.generation})`;
    this.log.error({ model: `${this.modelName}@${this.modelVersion}`, deadlineMs: this.deadlineMs, generation: p.generation },
      'inference missed its deadline: killing the worker');
    p.reject(new InferenceTimeoutError(why));
    this.sw.kill(`inference missed its ${this.deadlineMs} ms deadline`);
  }

  private onDeath(d: { reason: string; generation: number; deaths: number }): void {
    this.supervision.deaths++;
    const err = new InferenceWorkerExitedError(d.reason);
    this.failPending(err);
    this.emit('worker-death', d);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log.error({ err, generation: d.generation }, 'inference worker died (no error listener on the runner)');
  }

  private onRespawned(m: ReadyMsg, generation: number): void {
    if (this.gone) return;
    this.supervision.restarts++;
    // the frame buffer went down with a worker that held it
    if (this.transport === 'transfer' && !this.frameBuf) this.frameBuf = new ArrayBuffer(this.frameBytes);
    if (m.provider !== this.provider) this.log.warn({ was: this.provider, now: m.provider, fallbacks: m.fallbacks }, 'respawned inference worker runs on another provider');
    this.provider = m.provider;
    this.fallbacks = m.fallbacks;
    this.startup = m;
    this.log.info({ model: `${this.modelName}@${this.modelVersion}`, generation, provider: m.provider, startup: m.startup }, 'inference worker respawned');
    this.emit('worker-ready', { generation, restarts: this.supervision.restarts });
  }
}
