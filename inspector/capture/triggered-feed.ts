/**
 * TriggeredFeed: the line triggers the camera, and every frame carries the
 * part id of its trigger.
 *
 * The PLC sends one trigger telegram (Epoch, PartId, item) per part to the
 * capture worker's UDP trigger port (plc/trigger-telegram.ts). For the replay
 * camera the feed pushes image `item` of the replay folder into the pipeline's
 * appsrc and remembers the trigger in a FIFO; GstFrameSource takes the FIFO's
 * head with each sample. The pipeline (pipelines/replay-triggered.json) has no
 * element that drops, so samples come out in trigger order, one per push.
 *
 * Every trigger is accounted for: it becomes a frame, or `onLost` is told why
 * not (the camera is down or failed with frames in it: 'camera_error'; more than
 * `maxPending` frames wait in the camera: 'dropped'). Nothing is lost silently.
 *
 * Priming: when a pipeline starts, frames without a trigger are pushed and
 * consumed by the source itself (not parts): the first proves the pipeline end
 * to end without waiting for the line to run; the next `primeFrames - 1`, one at
 * a time, warm the camera path before the first part. Measured on the 2-core VM
 * (bench --parts-csv): without them the first ~20 parts spent 5–37 ms between
 * the push and the frame reaching JS (fresh memory for GStreamer's and the
 * binding's 1.3 MB buffers, cold code), against ~0.5 ms once warm. Priming
 * stops at the first real trigger: it never delays a part by more than the one
 * priming frame already in the pipeline.
 *
 * Rehearsal (station/rehearsal.ts): before Station.Ready the station asks for
 * frames one at a time (`rehearse()`); each comes out of the pipeline as a frame
 * marked `rehearsal` and goes the whole way a part's frame goes in the station,
 * up to the decision, so the hand-overs and the main thread are warm as well.
 */
import dgram from 'node:dgram';
import type { Logger } from '../core/logger.js';
import { decodeTrigger, type TriggerTelegram } from '../plc/trigger-telegram.js';
import type { GstAppSrc } from './gst.js';

export type LostReason = 'dropped' | 'camera_error';
export interface LostPart extends TriggerTelegram { reason: LostReason }
/** A trigger waiting for its frame: `rxNs` is when this thread handled it (CLOCK_MONOTONIC), the camera stage's start. */
export interface PendingTrigger extends TriggerTelegram { rxNs: bigint }

export interface TriggeredFeedOptions {
  /** UDP port on `host` the PLC sends trigger telegrams to */
  port: number;
  host?: string;
  /** the replay images (raw GRAY8, one per item) */
  images: readonly Buffer[];
  /** frames that may wait inside the camera pipeline before a trigger is refused (default 8) */
  maxPending?: number;
  /** priming frames pushed (one at a time) when a pipeline starts, before the first trigger (default 64, minimum 1) */
  primeFrames?: number;
  onLost: (p: LostPart) => void;
  log: Logger;
}

/** The FIFO's marker for a priming frame. */
export const PRIME = 'prime' as const;
/** The FIFO's marker for a rehearsal frame (see the header). */
export const REHEARSE = 'rehearse' as const;

export class TriggeredFeed {
  /** invalid: not a telegram; repeated: an id not above the last one of its epoch (ignored: a part is photographed once) */
  readonly stats = { triggers: 0, invalid: 0, lost: 0, repeated: 0, primed: 0, rehearsed: 0 };
  private lastEpoch = 0;
  private lastPartId = 0;
  private socket: dgram.Socket | null = null;
  private src: GstAppSrc | null = null;
  private readonly pending: Array<PendingTrigger | typeof PRIME | typeof REHEARSE> = [];
  private readonly maxPending: number;
  private readonly primeFrames: number;
  /** priming frames still to push for the current pipeline */
  private primesLeft = 0;

  constructor(private readonly opts: TriggeredFeedOptions) {
    if (opts.images.length === 0) throw new Error('a triggered replay camera needs at least one image');
    this.maxPending = opts.maxPending ?? 8;
    this.primeFrames = Math.max(1, opts.primeFrames ?? 64);
  }

  /** Frames pushed and not yet taken. */
  get inFlight(): number { return this.pending.length; }

  /** Listen for triggers (resolves once bound). */
  async bind(): Promise<void> {
    if (this.socket) return;
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (buf) => this.onDatagram(buf));
    socket.on('error', (err) => this.opts.log.error({ err }, 'trigger socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.host ?? '127.0.0.1', () => { socket.off('error', reject); resolve(); });
    });
    this.socket = socket;
  }

  /** A new pipeline is playing: push the first priming frame (take() pushes the others). */
  attach(src: GstAppSrc): void {
    this.src = src;
    this.primesLeft = this.primeFrames;
    this.prime();
  }

  private prime(): void {
    this.primesLeft--;
    this.stats.primed++;
    this.pending.push(PRIME);
    const images = this.opts.images;
    this.src!.push(images[this.stats.primed % images.length]!);
  }

  /**
   * Push one rehearsal frame (false: no pipeline, or the line has started: parts come first).
   * Only before the first trigger; the station asks for the next once this one was judged.
   */
  rehearse(): boolean {
    if (!this.src || this.stats.triggers > 0) return false;
    this.stats.rehearsed++;
    this.pending.push(REHEARSE);
    const images = this.opts.images;
    this.src.push(images[this.stats.rehearsed % images.length]!);
    return true;
  }

  /** The pipeline is gone: the frames still in it are lost. */
  detach(): void {
    this.src = null;
    this.primesLeft = 0;
    const lost = this.pending.splice(0);
    for (const t of lost) if (typeof t === 'object') this.lose(t, 'camera_error');
  }

  /** The trigger of the sample that just came out of the pipeline (null: a sample nobody pushed). */
  take(): PendingTrigger | typeof PRIME | typeof REHEARSE | null {
    const t = this.pending.shift() ?? null;
    if (t === PRIME && this.primesLeft > 0 && this.src) this.prime(); // the next one, behind any trigger already pushed
    return t;
  }

  /** A sample that could not be used (wrong size): its part is lost. */
  lose(t: TriggerTelegram, reason: LostReason): void {
    this.stats.lost++;
    this.opts.onLost({ epoch: t.epoch, partId: t.partId, item: t.item, reason });
  }

  close(): void {
    this.detach();
    const s = this.socket;
    this.socket = null;
    s?.close();
  }

  /** Exposed for tests and the in-process line: one trigger as if it came over UDP. */
  trigger(t: TriggerTelegram): void {
    const rxNs = process.hrtime.bigint();
    // within an epoch the line numbers parts upwards: a repeated or older id is never a new part
    if (t.epoch === this.lastEpoch && t.partId <= this.lastPartId) { this.stats.repeated++; return; }
    this.lastEpoch = t.epoch;
    this.lastPartId = t.partId;
    this.stats.triggers++;
    this.primesLeft = 0; // the line runs: no more priming
    const src = this.src;
    if (!src) { this.lose(t, 'camera_error'); return; }
    if (this.pending.length >= this.maxPending) { this.lose(t, 'dropped'); return; }
    const images = this.opts.images;
    this.pending.push({ epoch: t.epoch, partId: t.partId, item: t.item, rxNs });
    src.push(images[t.item % images.length]!);
  }

  private onDatagram(buf: Buffer): void {
    const t = decodeTrigger(buf);
    if (!t) { this.stats.invalid++; return; }
    this.trigger(t);
  }
}
