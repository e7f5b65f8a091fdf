/**
 * Main-thread side of the camera: a frame source (async iterator, latest
 * frame wins, drops counted) whose frames live in the shared ring filled by
 * the capture worker. A frame's `data` is a view of its ring slot; the
 * consumer calls `frame.release()` when done with it.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type { Frame } from '../core/types.js';
import type { Logger } from '../core/logger.js';
import { reviveError } from '../core/error-transport.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
import { LatestFrameMailbox, type FrameSourceStats, type SourceState } from './frame-source.js';
import { Counter, FrameRing } from './frame-ring.js';
import type { CaptureConfig } from './create-source.js';
import type { CaptureWorkerData, FromCapture, ToCapture } from './capture-worker.js';
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

export class CaptureHost extends EventEmitter implements AsyncIterable<Frame> {
  private readonly ring: FrameRing;
  private readonly worker: Worker;
  private readonly mailbox: LatestFrameMailbox;
  private readonly releasers: Array<() => void>;
  private _state: SourceState = 'starting';
  private stopped: Promise<void> | null = null;
  /** generation of the check settings last sent to the worker: older samples are not emitted */
  private checksGen = 0;

  /**
   * `ring`: share one allocated elsewhere (the inference worker reads frames straight from it).
   * `checks`: sample focus/exposure in the worker; each sample is emitted as 'checks'.
   */
  constructor(private readonly config: CaptureConfig, private readonly log: Logger, ring?: FrameRing, checks: CaptureChecksConfig | null = null) {
    super();
    const { logger: _unused, ...plain } = config;
    void _unused;
    this.ring = ring ?? FrameRing.allocate(RING_SLOTS, config.width * config.height);
    this.releasers = this.ring.views.map((_, i) => () => this.ring.release(i));
    // a frame pushed out of the mailbox is a lost part: reported ('dropped', the frame without its data)
    this.mailbox = new LatestFrameMailbox((f) => {
      f.release?.();
      this.emit('dropped', { seq: f.seq, partId: f.partId, lineEpoch: f.lineEpoch, item: f.item, sourceRef: f.sourceRef });
    }, MAILBOX_DEPTH);
    this.worker = spawnTsWorker(new URL('./capture-worker.ts', import.meta.url),
      { config: plain, ring: this.ring.buffers, checks } satisfies CaptureWorkerData);
    this.worker.on('message', (m: FromCapture) => this.onMessage(m));
    this.worker.on('error', (err) => {
      this.log.error({ err }, 'capture worker failed');
      this.setState('stopped');
      this.mailbox.close();
    });
  }

  get state(): SourceState { return this._state; }
  get lastSeq(): number { return this.ring.read(Counter.LAST_SEQ); }

  /** Frames seen, dropped (mailbox replaced + ring full), restarts, errors. */
  get stats(): FrameSourceStats {
    return {
      frames: this.ring.read(Counter.FRAMES),
      dropped: this.mailbox.stats.dropped + this.ring.read(Counter.RING_FULL_DROPS),
      restarts: this.ring.read(Counter.RESTARTS),
      errors: this.ring.read(Counter.ERRORS),
    };
  }

  /** Resolves at the first frame; rejects with the coded capture error. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const on = (m: FromCapture) => {
        if (m.t === 'started') { this.worker.off('message', on); resolve(); }
        if (m.t === 'start-error') { this.worker.off('message', on); void this.worker.terminate(); reject(reviveError(m.error, 'the capture worker')); }
      };
      this.worker.on('message', on);
      this.worker.postMessage({ t: 'start' } satisfies ToCapture);
    });
  }

  /**
   * Put new focus/exposure check settings (ROI, interval; null: off) in force without stopping
   * the camera: the worker applies them between two frames and samples the next frame with them.
   * Samples taken with the previous settings that are still in flight are not emitted, so every
   * 'checks' event after this call was computed with these settings.
   */
  updateChecks(checks: CaptureChecksConfig | null): void {
    this.checksGen++;
    this.worker.postMessage({ t: 'set-checks', checks, gen: this.checksGen } satisfies ToCapture);
  }

  /** Stop the camera; the iterator ends once the worker has stopped. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const t = setTimeout(() => void this.worker.terminate().then(() => resolve()), 15_000);
      this.worker.on('message', (m: FromCapture) => {
        if (m.t !== 'stopped') return;
        clearTimeout(t);
        void this.worker.terminate().then(() => resolve());
      });
      this.worker.postMessage({ t: 'stop' } satisfies ToCapture);
    }).then(() => { this.mailbox.close(); this.setState('stopped'); });
    return this.stopped;
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.mailbox[Symbol.asyncIterator]();
  }

  private onMessage(m: FromCapture): void {
    if (m.t === 'frame') {
      if (this._state !== 'running') this.setState('running');
      const frame: Frame = {
        seq: m.seq, capturedNs: m.capturedNs, width: this.config.width, height: this.config.height, format: 'GRAY8',
        data: this.ring.views[m.slot]!, slot: m.slot, sourceRef: m.sourceRef, release: this.releasers[m.slot],
      };
      if (m.partId !== undefined) { frame.partId = m.partId; frame.lineEpoch = m.lineEpoch; frame.item = m.item; }
      this.mailbox.offer(frame);
    } else if (m.t === 'lost') {
      this.emit('lost', { epoch: m.epoch, partId: m.partId, item: m.item, reason: m.reason } satisfies LostPart);
    } else if (m.t === 'failed') {
      const err = reviveError(m.error, 'the capture worker');
      this.log.error({ err: err.message }, 'camera failed after start');
      this.setState('stopped');
      this.mailbox.close();
      if (this.listenerCount('error') > 0) this.emit('error', err);
    } else if (m.t === 'state') {
      this.setState(m.state as SourceState);
    } else if (m.t === 'checks') {
      if (m.gen === this.checksGen) this.emit('checks', m.checks);
    }
  }

  private setState(s: SourceState): void {
    if (s === this._state) return;
    this._state = s;
    this.emit('state', s);
  }
}
