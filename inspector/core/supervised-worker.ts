/**
 * One supervised worker thread: a worker started with spawnTsWorker, watched,
 * and started again when it dies.
 *
 *   const sw = new SupervisedWorker({ name: 'inference', url, workerData: (start) => init });
 *   const ready = await sw.start();          // the ready handshake of the first start
 *   sw.on('message', (m, generation) => …);  // messages of the CURRENT worker only
 *   sw.post(msg, transfer);                  // false while no ready worker is there
 *   sw.kill('missed its deadline');          // a hung worker: terminated, then restarted like a death
 *   await sw.close();                        // for good: no restart
 *
 * - Ready handshake: a start is done when the worker posts a message `ready(msg)`
 *   accepts (default: `{ t: 'ready' }` or `{ type: 'ready' }`); a message
 *   `startError(msg)` turns into an Error, an exit or uncaught error during the
 *   start, or no ready within `startTimeoutMs`, fails the start.
 * - The first start() rejects on failure and the worker is closed (the caller
 *   decides: a bad model package is refused, not retried). After a worker has
 *   been ready once, every death ('exit', 'error', kill()) is counted, emitted as
 *   'death' and followed by a restart after an exponential backoff (initialMs ×
 *   factor^n up to maxMs, ± jitter; n goes back to 0 once a worker has stayed up
 *   resetAfterMs). A failed restart counts as a death too and backs off further.
 *   `workerData(start)` is called for every start (0: the first), so a restart can
 *   hand over the same shared buffers and e.g. a shorter warm-up.
 * - Generations: each spawned worker gets the next generation number; 'message'
 *   is emitted only for the current one, so a late answer from a killed worker can
 *   never be taken for the answer of its successor.
 *
 * Events: 'message' (msg, generation); 'ready' (value, { generation, restart });
 * 'death' ({ reason, generation, deaths }); 'restarting' ({ attempt, delayMs });
 * 'restarted' ({ generation, restarts }); 'closed'.
 *
 * Used today by: the inference worker (inference/model-runner.ts: live, shadow and
 * validation runners). Meant for the other long-lived workers as well (capture,
 * store, images, server, calibration); one-shot workers such as a retention pass
 * need no restart.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { WorkerStartError } from './errors.js';
import { spawnTsWorker, type SpawnTsWorkerOptions } from './spawn-ts-worker.js';

export type SupervisedState = 'starting' | 'ready' | 'restarting' | 'closed';

export interface BackoffOptions {
  /** delay before the first restart after a death (default 200 ms) */
  initialMs: number;
  /** the delay never grows past this (default 30 s) */
  maxMs: number;
  /** growth per consecutive death (default 2) */
  factor: number;
  /** ± this fraction of random spread on each delay, 0..1 (default 0.2) */
  jitter: number;
  /** a worker that stayed ready this long resets the backoff (default 60 s) */
  resetAfterMs: number;
}

export interface SupervisedWorkerOptions<R> {
  /** for messages and errors ('inference', 'store', …) */
  name: string;
  /** the worker's entry (a file: URL, .ts or .js), started with spawnTsWorker */
  url: URL;
  /** workerData for each start; `start` is 0 for the first, 1, 2, … for restarts */
  workerData: (start: number) => unknown;
  workerOptions?: SpawnTsWorkerOptions;
  /** the ready handshake: a value for the ready message, undefined for any other */
  ready?: (msg: unknown) => R | undefined;
  /** a message that reports a failed start (e.g. a coded error), else undefined */
  startError?: (msg: unknown) => Error | undefined;
  /** the Error for a start that died or timed out (default WorkerStartError, INSPECTOR_WORKER_START) */
  startFailure?: (reason: string) => Error;
  /** no ready within this: the start fails (0: no limit; default 60 s) */
  startTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** unref the worker and the restart timer (they never hold the process open) */
  unref?: boolean;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.2, resetAfterMs: 60_000 };

function defaultReady<R>(msg: unknown): R | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as { t?: unknown; type?: unknown };
  return m.t === 'ready' || m.type === 'ready' ? msg as R : undefined;
}

/** One spawned worker: its generation and its start handshake. */
interface Life<R> {
  worker: Worker;
  generation: number;
  ready: boolean;
  readyAt: number;
  settle: ((err: Error | null, value?: R) => void) | null;
  timer: NodeJS.Timeout | null;
}

export class SupervisedWorker<R = unknown> extends EventEmitter {
  private current: Life<R> | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  /** the termination of the last worker that died or was killed (close() waits for it) */
  private terminating: Promise<unknown> = Promise.resolve();
  private starts = 0;
  private attempt = 0;
  private readonly backoff: BackoffOptions;
  private _state: SupervisedState = 'starting';
  private _generation = 0;
  deaths = 0;
  restarts = 0;
  lastDeathReason: string | null = null;
  /** the last ready value (the handshake message of the current or last worker) */
  readyValue: R | null = null;

  constructor(private readonly opts: SupervisedWorkerOptions<R>) {
    super();
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  get state(): SupervisedState { return this._state; }
  /** generation of the current (or last) worker: 1 for the first */
  get generation(): number { return this._generation; }
  /** the current worker (null while restarting or closed) */
  get worker(): Worker | null { return this.current?.worker ?? null; }

  /** The first start: resolves with the ready value; rejects (and closes) if the worker fails to get ready. */
  async start(): Promise<R> {
    if (this.starts > 0) throw new Error(`${this.opts.name} worker: start() called twice`);
    try {
      const value = await this.launch();
      this.emit('ready', value, { generation: this._generation, restart: false });
      return value;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Post to the current worker; false (nothing sent) unless it is ready. */
  post(msg: unknown, transfer?: readonly ArrayBuffer[]): boolean {
    const life = this.current;
    if (this._state !== 'ready' || !life) return false;
    life.worker.postMessage(msg, transfer as ArrayBuffer[] | undefined);
    return true;
  }

  /** Terminate the current worker (e.g. hung): counted as a death, then restarted. */
  kill(reason: string): void {
    const life = this.current;
    if (this._state === 'closed' || !life) return;
    this.gone(life, `killed: ${reason}`);
  }

  /** Stop for good: the worker is terminated and never restarted. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    this._state = 'closed';
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const life = this.current;
    this.current = null;
    if (life) {
      this.finishStart(life, new WorkerStartError(this.opts.name, 'closed while starting'));
      this.terminating = Promise.all([this.terminating, life.worker.terminate().catch(() => undefined)]);
    }
    // a worker stuck in native code cannot be terminated until it returns: do not wait for it forever
    await Promise.race([this.terminating, new Promise((r) => setTimeout(r, 5000).unref())]);
    this.emit('closed');
  }

  /** Spawn the next generation and run its ready handshake. */
  private launch(): Promise<R> {
    const start = this.starts++;
    const generation = ++this._generation;
    const worker = spawnTsWorker(this.opts.url, this.opts.workerData(start), { name: this.opts.name, ...this.opts.workerOptions });
    if (this.opts.unref) worker.unref();
    const life: Life<R> = { worker, generation, ready: false, readyAt: 0, settle: null, timer: null };
    this.current = life;
    const readyOf = this.opts.ready ?? defaultReady<R>;
    worker.on('message', (m: unknown) => {
      if (this.current !== life) return; // a late message of a killed or replaced worker
      if (!life.ready) {
        const value = readyOf(m);
        if (value !== undefined) { this.finishStart(life, null, value); return; }
        const err = this.opts.startError?.(m);
        if (err) { this.gone(life, err.message, err); return; }
      }
      this.emit('message', m, generation);
    });
    worker.on('error', (err) => this.gone(life, life.ready ? `uncaught error: ${err.message}` : `failed to start: ${err.message}`));
    worker.on('exit', (code) => this.gone(life, life.ready ? `exited with code ${code}` : `exited with code ${code} during start-up`));
    return new Promise<R>((resolve, reject) => {
      life.settle = (err, value) => (err ? reject(err) : resolve(value as R));
      const ms = this.opts.startTimeoutMs ?? 60_000;
      if (ms > 0) {
        life.timer = setTimeout(() => this.gone(life, `no ready message within ${ms} ms`), ms);
        life.timer.unref();
      }
    });
  }

  private finishStart(life: Life<R>, err: Error | null, value?: R): void {
    if (life.timer) clearTimeout(life.timer);
    life.timer = null;
    const settle = life.settle;
    life.settle = null;
    if (!err) {
      life.ready = true;
      life.readyAt = performance.now();
      this.readyValue = value!;
      this._state = 'ready';
    }
    settle?.(err, value);
  }

  /** The current worker exited, failed, missed its start or was killed: count it, restart it. */
  private gone(life: Life<R>, reason: string, startErr?: Error): void {
    if (this.current !== life || this._state === 'closed') return;
    this.current = null;
    this.terminating = life.worker.terminate().catch(() => undefined);
    const first = this.starts === 1 && !life.ready;
    if (!life.ready) this.finishStart(life, startErr ?? (this.opts.startFailure?.(reason) ?? new WorkerStartError(this.opts.name, reason)));
    if (first) return; // the first start failing is start()'s rejection, not a death
    if (life.ready && performance.now() - life.readyAt >= this.backoff.resetAfterMs) this.attempt = 0;
    this.died(reason, life.generation);
  }

  private died(reason: string, generation: number): void {
    this.deaths++;
    this.lastDeathReason = reason;
    this._state = 'restarting';
    this.emit('death', { reason, generation, deaths: this.deaths });
    if (this._state !== 'restarting') return; // a 'death' listener closed us
    const { initialMs, maxMs, factor, jitter } = this.backoff;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    const delayMs = Math.max(0, Math.round(base * (1 + jitter * (2 * Math.random() - 1))));
    this.attempt++;
    this.emit('restarting', { attempt: this.attempt, delayMs });
    this.restartTimer = setTimeout(() => this.restart(), delayMs);
    if (this.opts.unref) this.restartTimer.unref();
  }

  private restart(): void {
    this.restartTimer = null;
    if (this._state !== 'restarting') return;
    let p: Promise<R>;
    try {
      p = this.launch();
    } catch (err) {
      // spawning itself threw (e.g. no memory for a new isolate): a failed restart, back off further
      this.current = null;
      this.died(`restart failed: ${(err as Error).message}`, this._generation);
      return;
    }
    const generation = this._generation;
    p.then((value) => {
      if (this._state !== 'ready' || this._generation !== generation) return;
      this.restarts++;
      this.emit('ready', value, { generation, restart: true });
      this.emit('restarted', { generation, restarts: this.restarts });
    }, () => { /* counted as a death by gone(); the next restart is already scheduled */ });
  }
}
