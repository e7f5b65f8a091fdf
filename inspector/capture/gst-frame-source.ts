/**
 * GstFrameSource: frames from a GStreamer launch string as an async iterator,
 * latest frame wins (LatestFrameMailbox), with supervision and restarts.
 *
 *   const src = new GstFrameSource({ launch, width, height, restart: {...}, … });
 *   await src.start();                 // first frame, or CaptureError
 *   for await (const frame of src) …   // keeps going across restarts
 *   src.stop();                        // the loop ends
 *
 * Pull loop: one `appsink.pull` is pending at any time and re-armed as soon as
 * a sample arrives; `capturedNs` is stamped first thing in the callback. Frames
 * whose byte length is not width*height are counted in `stats.errors` and
 * dropped (never passed on). `seq` is 1-based and continues across restarts.
 *
 * Supervision: bus ERROR/EOS, an appsink EOS (null sample) and a stall (no
 * valid frame for `stallTimeoutMs`) all mean "this pipeline is dead": it is
 * stopped, and after an exponential backoff (initialDelayMs doubling up to
 * maxDelayMs, reset by the first frame of a new pipeline) a NEW pipeline is
 * built from the launch string. Failures count in `stats.errors`, rebuilds in
 * `stats.restarts`. Nothing is thrown into the consumer; 'error' is emitted
 * only when someone listens (an unlistened 'error' would crash the process).
 *
 * The pipeline itself (building it, stopping it so that its threads are
 * released, the event-loop stalls of parse, play and stop): gst-pipeline-run.ts.
 * The options and events: gst-frame-source-options.ts (re-exported here).
 */
import { EventEmitter } from 'node:events';
import { CaptureError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Frame } from '../core/types.js';
import { LatestFrameMailbox, type FrameSourceStats, type SourceState } from './frame-source.js';
import type { GstBusMessage } from './gst.js';
import {
  checkFrameSourceOptions, restartDelay, type GstFrameSourceEvents, type GstFrameSourceOptions,
} from './gst-frame-source-options.js';
import { buildPipeline, noteBlocking, stopPipeline, type Run } from './gst-pipeline-run.js';
import { PRIME, REHEARSE } from './triggered-feed.js';

export type { GstFrameSourceEvents, GstFrameSourceOptions, RestartPolicy } from './gst-frame-source-options.js';

const MAX_SIZE_ERROR_LOGS = 5;

export class GstFrameSource extends EventEmitter<GstFrameSourceEvents> implements AsyncIterable<Frame> {
  private readonly opts: GstFrameSourceOptions;
  private readonly mailbox: LatestFrameMailbox;
  private readonly frameBytes: number;
  private readonly log: Logger;
  private _state: SourceState = 'stopped';
  private started = false;
  private gen = 0;
  private run: Run | null = null;
  private seq = 0;
  private lastFrameAt = 0;
  private failures = 0;
  private sizeErrors = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private firstFrameTimer: NodeJS.Timeout | null = null;
  private startWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  /** the last failure, for operators and error messages */
  lastError: string | null = null;

  constructor(opts: GstFrameSourceOptions) {
    super();
    checkFrameSourceOptions(opts);
    const { width, height } = opts;
    this.opts = opts;
    const feed = opts.feed;
    // a frame replaced in the mailbox is a part lost: with a trigger feed it is reported with its id
    this.mailbox = new LatestFrameMailbox(feed ? (f) => {
      if (f.partId !== undefined && f.lineEpoch !== undefined) feed.lose({ epoch: f.lineEpoch, partId: f.partId, item: f.item ?? 0 }, 'dropped');
    } : undefined);
    this.frameBytes = width * height;
    this.log = opts.logger; // the caller binds { mod: 'capture' } (the station does)
  }

  /** frames, drops, restarts, errors (live object of the mailbox) */
  get stats(): FrameSourceStats { return this.mailbox.stats; }

  get state(): SourceState { return this._state; }

  /** One rehearsal frame through the pipeline (triggered-feed.ts); false: this camera cannot, or the line runs. */
  rehearse(): boolean { return this.opts.feed?.rehearse() ?? false; }

  /** seq of the last frame handed to the mailbox (0 before the first) */
  get lastSeq(): number { return this.seq; }

  /** Build and play the pipeline; resolves at the first valid frame. */
  start(): Promise<void> {
    if (this.started) return Promise.reject(new CaptureError('start() was already called on this source'));
    this.started = true;
    return new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
      this.setState('starting');
      this.firstFrameTimer = setTimeout(() => {
        this.firstFrameTimer = null;
        this.failStart(`no frame within ${this.opts.firstFrameTimeoutMs} ms`
          + (this.lastError ? `; last error: ${this.lastError}` : ''));
      }, this.opts.firstFrameTimeoutMs);
      const tick = Math.max(20, Math.min(250, Math.floor(this.opts.stallTimeoutMs / 4)));
      this.watchdog = setInterval(() => this.checkStall(), tick);
      this.attempt();
    });
  }

  /** Stop the pipeline for good; the consumer's iteration ends. Idempotent. */
  stop(): void {
    if (this._state === 'stopped' && this.mailbox.isClosed) return;
    this.clearTimers();
    this.teardown();
    this.opts.feed?.close();
    this.mailbox.close();
    this.setState('stopped');
    const w = this.startWaiter;
    this.startWaiter = null;
    w?.reject(new CaptureError('source stopped before the first frame'));
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return {
      next: () => this.mailbox.next(),
      // breaking out of `for await` stops the source
      return: async () => { this.stop(); return { value: undefined, done: true }; },
    };
  }

  // ---------------------------------------------------------------- internals

  private attempt(): void {
    if (this._state === 'stopped') return;
    const gen = ++this.gen;
    const built = buildPipeline(this.opts.launch, Boolean(this.opts.feed), this.log);
    if (!built.ok) {
      // a launch string that does not parse fails start(); once the source ran it is a (permanent) failure
      if (built.parseError && this._state !== 'starting') this.onFailure(gen, built.reason, true);
      else this.failStart(built.reason);
      return;
    }
    const { pipeline, sink, src } = built;
    const run: Run = { gen, pipeline, sink, samples: 0, wrongSize: 0, startedAt: 0 };
    this.run = run;
    pipeline.pollBus((msg) => this.onBus(gen, msg));
    const t0 = performance.now();
    pipeline.play();
    run.startedAt = performance.now();
    noteBlocking(this.log, 'play', run.startedAt - t0);
    if (this.run === run) {
      this.arm(run);
      if (src) this.opts.feed!.attach(src);
    }
  }

  private arm(run: Run): void {
    run.sink.pull((buf, caps) => {
      const capturedNs = process.hrtime.bigint();
      if (run.gen !== this.gen || this.run !== run) return; // a stopped pipeline
      if (buf === null) {
        // EOS or a flushing sink. Give the bus a moment: its ERROR says why.
        setTimeout(() => this.onFailure(run.gen, this.lastBusError(run)
          ?? 'the appsink returned no sample (EOS, or the pipeline failed to start before its bus reported why)'), 50);
        return;
      }
      this.arm(run);
      run.samples++;
      const trigger = this.opts.feed ? this.opts.feed.take() : null;
      if (trigger === PRIME) { // the pipeline works end to end; not a part
        this.lastFrameAt = performance.now();
        if (this._state !== 'running') this.onFirstFrame();
        return;
      }
      if (buf.length !== this.frameBytes) {
        if (trigger && trigger !== REHEARSE) this.opts.feed!.lose(trigger, 'camera_error');
        this.mailbox.stats.errors++;
        run.wrongSize++;
        if (this.sizeErrors++ < MAX_SIZE_ERROR_LOGS) {
          this.log.error({ bytes: buf.length, expected: this.frameBytes, caps }, 'frame of the wrong size dropped');
        }
        this.lastError = `frame of ${buf.length} bytes, expected ${this.opts.width}x${this.opts.height} = ${this.frameBytes}`;
        return;
      }
      const rehearsal = trigger === REHEARSE;
      const frame: Frame = {
        seq: rehearsal ? 0 : ++this.seq, // not a part: the part sequence stays contiguous
        capturedNs,
        width: this.opts.width,
        height: this.opts.height,
        format: 'GRAY8',
        data: buf,
      };
      const refs = this.opts.sourceRefs;
      if (rehearsal) frame.rehearsal = true;
      else if (this.opts.feed) {
        if (!trigger) { // cannot happen with a non-dropping pipeline: never guess an id
          this.onFailure(run.gen, 'a frame came out of the triggered pipeline with no trigger waiting');
          return;
        }
        frame.partId = trigger.partId;
        frame.lineEpoch = trigger.epoch;
        frame.item = trigger.item;
        frame.triggeredNs = trigger.rxNs;
        if (refs && refs.length > 0) frame.sourceRef = refs[trigger.item % refs.length];
      } else if (refs && refs.length > 0) frame.sourceRef = refs[(run.samples - 1) % refs.length];
      this.lastFrameAt = performance.now();
      this.mailbox.offer(frame);
      if (this._state !== 'running') this.onFirstFrame();
    });
  }

  private readonly busErrors = new WeakMap<Run, string>();

  private lastBusError(run: Run): string | undefined { return this.busErrors.get(run); }

  private onBus(gen: number, msg: GstBusMessage): void {
    if (gen !== this.gen) return;
    if (msg.type === 'error') {
      const reason = `${msg._src_element_name}: ${msg.message ?? 'error'}`;
      if (this.run) this.busErrors.set(this.run, reason);
      this.onFailure(gen, reason);
    } else if (msg.type === 'eos') {
      this.onFailure(gen, 'unexpected EOS on the bus');
    } else if (msg.type === 'warning') {
      this.log.warn({ element: msg._src_element_name, debug: msg.debug }, 'pipeline warning');
    }
  }

  private onFirstFrame(): void {
    const previous = this._state;
    this.failures = 0;
    this.setState('running');
    if (previous === 'starting') {
      if (this.firstFrameTimer) { clearTimeout(this.firstFrameTimer); this.firstFrameTimer = null; }
      const w = this.startWaiter;
      this.startWaiter = null;
      w?.resolve();
      this.log.info({ restarts: this.stats.restarts }, 'capture running');
    } else {
      this.log.info({ restarts: this.stats.restarts, seq: this.seq }, 'capture resumed');
    }
  }

  private checkStall(): void {
    const run = this.run;
    if (!run || this._state === 'stopped' || run.startedAt === 0) return;
    const valid = run.samples - run.wrongSize;
    // a triggered camera with no trigger waiting is idle, not stalled
    if (this.opts.feed && this.opts.feed.inFlight === 0 && valid > 0) return;
    const since = Math.max(run.startedAt, valid > 0 ? this.lastFrameAt : 0);
    const idle = performance.now() - since;
    if (idle > this.opts.stallTimeoutMs) {
      const why = run.wrongSize > 0 ? ` (${run.wrongSize} dropped: ${this.lastError})` : '';
      this.onFailure(run.gen, `stall: no valid frame for ${Math.round(idle)} ms${why}`);
    }
  }

  /** A pipeline died: tear it down and schedule a rebuild with backoff. */
  private onFailure(gen: number, reason: string, permanent = false): void {
    if (gen !== this.gen || this._state === 'stopped') return;
    this.mailbox.stats.errors++;
    this.lastError = reason;
    this.failures++;
    const delay = restartDelay(this.opts.restart, this.failures);
    this.log.warn({ reason, failures: this.failures, delayMs: delay, permanent }, 'capture pipeline failed');
    this.teardown();
    if (this._state === 'running') this.setState('restarting');
    this.emitError(new CaptureError(reason));
    if ((this._state as SourceState) === 'stopped') return; // a listener stopped us
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this._state === 'stopped') return;
      this.mailbox.stats.restarts++;
      this.attempt();
    }, delay);
  }

  private failStart(reason: string): void {
    const w = this.startWaiter;
    this.startWaiter = null;
    this.lastError = reason;
    this.log.error({ reason }, 'capture did not start');
    this.stop();
    w?.reject(new CaptureError(reason));
  }

  private teardown(): void {
    const run = this.run;
    this.run = null;
    this.gen++; // every callback of the old pipeline is now stale
    this.opts.feed?.detach(); // frames still inside it are lost parts, reported
    if (!run) return;
    stopPipeline(run.pipeline, this.log);
  }

  private clearTimers(): void {
    if (this.restartTimer) { clearTimeout(this.restartTimer); this.restartTimer = null; }
    if (this.watchdog) { clearInterval(this.watchdog); this.watchdog = null; }
    if (this.firstFrameTimer) { clearTimeout(this.firstFrameTimer); this.firstFrameTimer = null; }
  }

  private setState(state: SourceState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    try {
      this.emit('state', state, previous);
    } catch (err) {
      this.log.error({ err }, "a 'state' listener threw");
    }
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', err);
    } catch (e) {
      this.log.error({ err: e }, "an 'error' listener threw");
    }
  }
}
