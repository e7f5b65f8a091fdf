/**
 * The supervised half of ModelRunner: how its inference worker is started and respawned
 * (startInferenceWorker), and RunnerSupervisor, the base class ModelRunner extends: the
 * per-infer() deadline, deaths, respawns, close(), the counters and the test hooks that
 * hang or crash the worker. Kept apart so that model-runner.ts holds the frame dispatch
 * alone. A base class rather than a helper object: infer() reaches `pending`, `deadline`
 * and `sw` as fields of the runner itself, with no extra hop or allocation per frame.
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
import * as codedErrors from '../core/errors.js';
import { reviveError } from '../core/error-transport.js';
import {
  FrameShapeMismatchError, InferenceWorkerExitedError, InferenceClosedError, InferenceTimeoutError,
} from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import { threadNice } from '../core/thread-priority.js';
import type { ProviderFallback } from './providers.js';
import { validateProviders } from './providers.js';
import {
  WORKER_KIND, type FrameTransport, type FromWorker, type ToWorker, type WorkerInit,
} from './inference-worker.js';
import type { ModelRunnerOptions } from './model-runner-types.js';

const WORKER_URL = new URL('./inference-worker.ts', import.meta.url);
/** warm-up runs of a respawned worker (the package was validated by the first start) */
const RESTART_WARMUP_RUNS = 2;

export type ReadyMsg = Extract<FromWorker, { t: 'ready' }>;

/** Supervision counters of one runner (all its workers together). */
export interface RunnerSupervision {
  /** workers that exited, crashed, failed a restart or were killed */
  deaths: number;
  /** respawned workers that got ready */
  restarts: number;
  /** infer() calls that missed the deadline */
  timeouts: number;
}

export type Pending = { kind: 'infer' | 'bench' | 'bare'; resolve: (v: never) => void; reject: (e: Error) => void; generation: number };

/** A started (ready) inference worker under its supervisor, and what ModelRunner.create() needs of its start. */
export interface StartedWorker {
  sw: SupervisedWorker<ReadyMsg>;
  ready: ReadyMsg;
  transport: FrameTransport;
  /** shared transport: the frame buffer the worker reads (null: transfer) */
  frameSab: SharedArrayBuffer | null;
  deadlineMs: number;
}

/**
 * Check the options, start the first worker and wait until it is ready (ModelRunner.create()).
 * A respawn of the same supervisor reuses the package, with a shorter warm-up and the first
 * worker's shared map.
 */
export async function startInferenceWorker(opts: ModelRunnerOptions, log: Logger): Promise<StartedWorker> {
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
  return { sw, ready, transport, frameSab, deadlineMs };
}

/** The supervision ModelRunner inherits; see the header. */
export abstract class RunnerSupervisor extends EventEmitter {
  abstract readonly modelName: string;
  abstract readonly modelVersion: string;
  readonly deadlineMs: number;
  readonly supervision: RunnerSupervision = { deaths: 0, restarts: 0, timeouts: 0 };
  /** the worker's provider, its fallbacks and start-up info (a respawned worker's replace them) */
  provider: string;
  fallbacks: readonly ProviderFallback[];
  startup: ReadyMsg;
  protected pending: Pending | null = null;
  /** close() was called */
  protected gone: Error | null = null;
  /** the one deadline timer, re-armed by refresh() for each infer() (no per-frame allocation) */
  protected readonly deadline: NodeJS.Timeout;

  protected constructor(
    protected readonly sw: SupervisedWorker<ReadyMsg>,
    ready: ReadyMsg,
    protected readonly log: Logger,
    deadlineMs: number,
    private readonly testHooks: boolean,
  ) {
    super();
    this.startup = ready;
    this.provider = ready.provider;
    this.fallbacks = ready.fallbacks;
    this.deadlineMs = deadlineMs;
    this.deadline = setTimeout(() => this.onDeadline(), deadlineMs);
    this.deadline.unref(); // re-armed by each infer(); firing with nothing pending is a no-op
    sw.on('death', (d: { reason: string; generation: number; deaths: number }) => this.onDeath(d));
    sw.on('restarting', (r: { attempt: number; delayMs: number }) => {
      this.log.warn({ model: `${this.modelName}@${this.modelVersion}`, ...r }, 'inference worker: respawning');
      this.emit('worker-restarting', r);
    });
    sw.on('ready', (m: ReadyMsg, info: { generation: number; restart: boolean }) => { if (info.restart) this.onRespawned(m, info.generation); });
  }

  /** The error of a call made while the worker is being respawned. */
  protected notReady(): Error {
    return new InferenceWorkerExitedError(`respawning after: ${this.sw.lastDeathReason ?? 'a death'}`);
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

  /** A respawned worker is ready: give the runner back what went down with the old one (onRespawned). */
  protected abstract replaceLostFrameBuffer(): void;

  protected failPending(err: Error): void {
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
    this.replaceLostFrameBuffer();
    if (m.provider !== this.provider) this.log.warn({ was: this.provider, now: m.provider, fallbacks: m.fallbacks }, 'respawned inference worker runs on another provider');
    this.provider = m.provider;
    this.fallbacks = m.fallbacks;
    this.startup = m;
    this.log.info({ model: `${this.modelName}@${this.modelVersion}`, generation, provider: m.provider, startup: m.startup }, 'inference worker respawned');
    this.emit('worker-ready', { generation, restarts: this.supervision.restarts });
  }
}
