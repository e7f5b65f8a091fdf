/**
 * Main-thread side of the camera: a frame source (async iterator, latest
 * frame wins, drops counted) whose frames live in the shared ring filled by
 * the capture worker. A frame's `data` is a view of its ring slot; the
 * consumer calls `frame.release()` when done with it.
 *
 * Supervised (core/supervised-worker.ts): the capture worker starts the camera
 * as it loads; its 'started' is the ready handshake. A worker that dies after
 * that (an uncaught error: it stops its pipeline and exits, see capture-worker.ts)
 * is respawned with backoff on the same ring, its seq and counters continuing:
 *  - the state goes 'restarting' at the death (the station's CAMERA_DOWN) and
 *    'running' again at the new worker's first frame; a respawn whose camera
 *    does not start counts as another death and backs off further;
 *  - the iterator does not end on a death, only on stop(); frames already
 *    handed over stay valid; slots the dead worker had claimed and not handed
 *    over are released;
 *  - parts missed meanwhile: a triggered camera's are reported by the PLC's
 *    outcome log (parts never seen); `supervision.downMs` says how long the
 *    camera was away; a respawn also counts in `stats.restarts`;
 *  - each death: 'worker-death' ({ worker: 'capture', reason, generation, deaths });
 *    each respawn ready: 'worker-ready'; counters: `supervision`.
 * The worker is never terminated while its pipeline runs (that aborts the
 * process): stop() stops the camera first, a hung worker is not killed.
 */
import { EventEmitter } from 'node:events';
import type { Frame } from '../core/types.js';
import type { Logger } from '../core/logger.js';
import { CaptureError } from '../core/errors.js';
import { reviveError, type CodedErrorData } from '../core/error-transport.js';
import { SupervisedWorker, type BackoffOptions } from '../core/supervised-worker.js';
import { threadNice } from '../core/thread-priority.js';
import { relayWorkerEvents, supervisionOf, type WorkerSupervision } from '../core/worker-events.js';
import { LatestFrameMailbox, type FrameSourceStats, type SourceState } from './frame-source.js';
import { Counter, FrameRing, SLOT_FILLED } from './frame-ring.js';
import type { CaptureConfig } from './create-source.js';
import type { CaptureResume, CaptureWorkerData, FromCapture, ToCapture } from './capture-worker.js';
import type { CaptureChecksConfig } from '../../calibration/station-calibration.js';
import type { LostPart } from './triggered-feed.js';

/**
 * Frames that may wait for the part loop before the oldest is dropped. Four
 * frames at 100 parts/s is 40 ms of slack, well inside a PLC gate window
 * (50–200 ms): a part that waits still gets its verdict in time, a part that is
 * dropped is a certain (fail-safe) reject.
 */
export const MAILBOX_DEPTH = 4;
/** Ring slots: the waiting frames, one in inference, one being filled, one spare. */
export const RING_SLOTS = MAILBOX_DEPTH + 3;

const WORKER_URL = new URL('./capture-worker.ts', import.meta.url);
/** how long stop() waits for the camera to stop before the worker is ended anyway */
const STOP_TIMEOUT_MS = 15_000;

export interface CaptureHostOptions {
  /** backoff of the worker respawns (default 500 ms doubling up to 30 s, ±20 %) */
  restartBackoff?: Partial<BackoffOptions>;
  /** tests only, never in a station config: debugKill() crashes the worker */
  testHooks?: boolean;
}

/** Supervision counters of the capture worker, with the time the camera was away. */
export interface CaptureSupervision extends WorkerSupervision {
  /** ms between worker deaths and the first frame of the next worker, summed (the current outage included) */
  downMs: number;
  /** ring slots the dead workers had claimed and not handed over, released */
  slotsReclaimed: number;
}

type Started = Extract<FromCapture, { t: 'started' }>;

export class CaptureHost extends EventEmitter implements AsyncIterable<Frame> {
  private readonly ring: FrameRing;
  private readonly sw: SupervisedWorker<Started>;
  private readonly mailbox: LatestFrameMailbox;
  private readonly releasers: Array<() => void>;
  /** slots handed to this thread (in the mailbox or with the consumer) and not released yet */
  private readonly held: boolean[];
  private _state: SourceState = 'starting';
  private startCalled = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  /** generation of the check settings last sent to the worker: older samples are not emitted */
  private checksGen = 0;
  private checks: CaptureChecksConfig | null;
  /** the last 'crashed' report of a worker (its uncaught error), for the death's log */
  private lastCrash: CodedErrorData | null = null;
  private downSince: number | null = null;
  private downMsDone = 0;
  private slotsReclaimed = 0;

  /**
   * `ring`: share one allocated elsewhere (the inference worker reads frames straight from it).
   * `checks`: sample focus/exposure in the worker; each sample is emitted as 'checks'.
   */
  constructor(private readonly config: CaptureConfig, private readonly log: Logger, ring?: FrameRing,
    checks: CaptureChecksConfig | null = null, private readonly opts: CaptureHostOptions = {}) {
    super();
    const { logger: _unused, ...plain } = config;
    void _unused;
    this.checks = checks;
    this.ring = ring ?? FrameRing.allocate(RING_SLOTS, config.width * config.height);
    this.held = this.ring.views.map(() => false);
    this.releasers = this.ring.views.map((_, i) => () => { this.held[i] = false; this.ring.release(i); });
    // a frame pushed out of the mailbox is a lost part: reported ('dropped', the frame without its data)
    this.mailbox = new LatestFrameMailbox((f) => {
      f.release?.();
      if (f.rehearsal) return; // not a part: nothing is lost
      this.emit('dropped', { seq: f.seq, partId: f.partId, lineEpoch: f.lineEpoch, item: f.item, sourceRef: f.sourceRef });
    }, MAILBOX_DEPTH);
    this.sw = new SupervisedWorker<Started>({
      name: 'capture', url: WORKER_URL,
      workerData: (start): CaptureWorkerData => ({
        config: plain, ring: this.ring.buffers, checks: this.checks, checksGen: this.checksGen,
        resume: start === 0 ? null : this.resume(), ...(opts.testHooks ? { testHooks: true } : {}),
      }),
      ready: (m) => ((m as FromCapture).t === 'started' ? m as Started : undefined),
      startError: (m) => ((m as FromCapture).t === 'start-error'
        ? reviveError((m as Extract<FromCapture, { t: 'start-error' }>).error, 'the capture worker') : undefined),
      startFailure: (reason) => new CaptureError(`the capture worker ${reason}${this.lastCrash ? `: ${this.lastCrash.message}` : ''}`),
      // the camera has its own first-frame timeout; ending a worker whose pipeline is starting would abort the process
      startTimeoutMs: 0,
      backoff: { initialMs: 500, ...opts.restartBackoff },
      workerOptions: { nice: threadNice('hot') }, // the hot path's first stage (core/thread-priority.ts)
    });
    this.sw.on('message', (m: FromCapture) => this.onMessage(m));
    this.sw.on('death', (d: { reason: string }) => this.onDeath(d.reason));
    this.sw.on('ready', (_m: Started, info: { restart: boolean }) => { if (info.restart) this.lastCrash = null; });
    relayWorkerEvents(this.sw, 'capture', log, (event, payload) => this.emit(event, payload));
  }

  get state(): SourceState { return this._state; }
  get lastSeq(): number { return this.ring.read(Counter.LAST_SEQ); }

  /** Frames seen, dropped (mailbox replaced + ring full), restarts (pipeline rebuilds and worker respawns), errors. */
  get stats(): FrameSourceStats {
    return {
      frames: this.ring.read(Counter.FRAMES),
      dropped: this.mailbox.stats.dropped + this.ring.read(Counter.RING_FULL_DROPS),
      restarts: this.ring.read(Counter.RESTARTS),
      errors: this.ring.read(Counter.ERRORS),
    };
  }

  /** Deaths and respawns of the capture worker, and how long the camera was away. */
  get supervision(): CaptureSupervision {
    const now = this.downSince === null ? 0 : performance.now() - this.downSince;
    return { ...supervisionOf('capture', this.sw), downMs: Math.round(this.downMsDone + now), slotsReclaimed: this.slotsReclaimed };
  }

  /** Start the worker and its camera: resolves at the first frame; rejects with the coded capture error. */
  async start(): Promise<void> {
    if (this.startCalled) throw new CaptureError('start() was already called on this capture host');
    this.startCalled = true;
    try {
      await this.sw.start();
    } catch (err) {
      this.mailbox.close();
      this.setState('stopped');
      throw err;
    }
  }

  /**
   * Put new focus/exposure check settings (ROI, interval; null: off) in force without stopping
   * the camera: the worker applies them between two frames and samples the next frame with them.
   * Samples taken with the previous settings that are still in flight are not emitted, so every
   * 'checks' event after this call was computed with these settings. A respawned worker starts with them.
   */
  updateChecks(checks: CaptureChecksConfig | null): void {
    this.checksGen++;
    this.checks = checks;
    this.sw.worker?.postMessage({ t: 'set-checks', checks, gen: this.checksGen } satisfies ToCapture);
  }

  /** Stop the camera; the iterator ends once the worker has stopped (a worker being respawned is not). */
  stop(): Promise<void> {
    this.stopped ??= this.doStop().then(() => { this.mailbox.close(); this.setState('stopped'); });
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    const w = this.sw.worker;
    if (w) {
      // the camera stops first (a pipeline must never be ended with its thread), then the worker
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.sw.off('message', onMsg);
          this.sw.off('death', done);
          this.sw.off('closed', done);
          resolve();
        };
        const onMsg = (m: FromCapture): void => { if (m.t === 'stopped') done(); };
        const t = setTimeout(done, STOP_TIMEOUT_MS);
        this.sw.on('message', onMsg);
        // a worker still starting answers with a failed start: a death (a respawn) or the first start's failure
        this.sw.on('death', done);
        this.sw.on('closed', done);
        w.postMessage({ t: 'stop' } satisfies ToCapture);
      });
    }
    await this.sw.close();
    if (this.downSince !== null) { this.downMsDone += performance.now() - this.downSince; this.downSince = null; }
  }

  /**
   * Ask the camera for one rehearsal frame (station/rehearsal.ts): it comes out of the iterator
   * marked `rehearsal`. A camera that cannot rehearse (not triggered, or the line runs) sends none.
   */
  rehearse(): void {
    this.sw.worker?.postMessage({ t: 'rehearse' } satisfies ToCapture);
  }

  /** Tests only (option testHooks): crash the worker for real (an uncaught error in its thread). */
  debugKill(): void {
    if (!this.opts.testHooks) throw new Error('debugKill() needs the testHooks option');
    this.sw.worker?.postMessage({ t: 'debug-crash' } satisfies ToCapture);
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.mailbox[Symbol.asyncIterator]();
  }

  /** Where a respawned worker carries on; also frees the slots the dead one had claimed. */
  private resume(): CaptureResume {
    this.reclaimSlots();
    return {
      seq: this.ring.read(Counter.LAST_SEQ), frames: this.ring.read(Counter.FRAMES),
      restarts: this.ring.read(Counter.RESTARTS) + 1, errors: this.ring.read(Counter.ERRORS),
    };
  }

  /** Slots a dead worker claimed but never handed over would be lost for good: free them. */
  private reclaimSlots(): void {
    for (let i = 0; i < this.held.length; i++) {
      if (this.held[i] || Atomics.load(this.ring.states, i) !== SLOT_FILLED) continue;
      this.ring.release(i);
      this.slotsReclaimed++;
    }
  }

  private onDeath(reason: string): void {
    // the dead worker's frames were all delivered before its exit: whatever it still holds, it never will
    this.reclaimSlots();
    if (this.stopping) { void this.sw.close(); return; } // no respawn: stop() is under way
    this.downSince ??= performance.now();
    this.log.error({ reason, crash: this.lastCrash?.message, lastSeq: this.lastSeq }, 'capture worker died: the camera is respawned');
    this.setState('restarting');
  }

  private onMessage(m: FromCapture): void {
    if (m.t === 'frame') {
      const deliveredNs = process.hrtime.bigint();
      if (this._state !== 'running') this.setState('running');
      if (this.downSince !== null) { this.downMsDone += performance.now() - this.downSince; this.downSince = null; }
      this.held[m.slot] = true;
      const frame: Frame = {
        seq: m.seq, capturedNs: m.capturedNs, triggeredNs: m.triggeredNs, deliveredNs, width: this.config.width, height: this.config.height, format: 'GRAY8',
        data: this.ring.views[m.slot]!, slot: m.slot, sourceRef: m.sourceRef, release: this.releasers[m.slot],
      };
      if (m.partId !== undefined) { frame.partId = m.partId; frame.lineEpoch = m.lineEpoch; frame.item = m.item; }
      if (m.rehearsal) frame.rehearsal = true;
      this.mailbox.offer(frame);
    } else if (m.t === 'lost') {
      this.emit('lost', { epoch: m.epoch, partId: m.partId, item: m.item, reason: m.reason } satisfies LostPart);
    } else if (m.t === 'state') {
      // 'stopped' is this host's to say (stop(), a failed start); a respawn stays 'restarting' until it runs
      if (m.state === 'stopped' || (m.state === 'starting' && this._state === 'restarting')) return;
      this.setState(m.state as SourceState);
    } else if (m.t === 'checks') {
      if (m.gen === this.checksGen) this.emit('checks', m.checks);
    } else if (m.t === 'crashed') {
      this.lastCrash = m.error;
    }
  }

  private setState(s: SourceState): void {
    if (s === this._state) return;
    this._state = s;
    this.emit('state', s);
  }
}
