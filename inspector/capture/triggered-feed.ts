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
 * Priming: when a pipeline starts, one frame without a trigger is pushed and
 * consumed by the source itself (not a part): it proves the pipeline end to end
 * without waiting for the line to run.
 */
import dgram from 'node:dgram';
import type { Logger } from '../core/logger.js';
import { decodeTrigger, type TriggerTelegram } from '../plc/trigger-telegram.js';
import type { GstAppSrc } from './gst.js';

export type LostReason = 'dropped' | 'camera_error';
export interface LostPart extends TriggerTelegram { reason: LostReason }

export interface TriggeredFeedOptions {
  /** UDP port on `host` the PLC sends trigger telegrams to */
  port: number;
  host?: string;
  /** the replay images (raw GRAY8, one per item) */
  images: readonly Buffer[];
  /** frames that may wait inside the camera pipeline before a trigger is refused (default 8) */
  maxPending?: number;
  onLost: (p: LostPart) => void;
  log: Logger;
}

/** The FIFO's marker for the priming frame. */
export const PRIME = 'prime' as const;

export class TriggeredFeed {
  /** invalid: not a telegram; repeated: an id not above the last one of its epoch (ignored: a part is photographed once) */
  readonly stats = { triggers: 0, invalid: 0, lost: 0, repeated: 0 };
  private lastEpoch = 0;
  private lastPartId = 0;
  private socket: dgram.Socket | null = null;
  private src: GstAppSrc | null = null;
  private readonly pending: Array<TriggerTelegram | typeof PRIME> = [];
  private readonly maxPending: number;

  constructor(private readonly opts: TriggeredFeedOptions) {
    if (opts.images.length === 0) throw new Error('a triggered replay camera needs at least one image');
    this.maxPending = opts.maxPending ?? 8;
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

  /** A new pipeline is playing: push the priming frame. */
  attach(src: GstAppSrc): void {
    this.src = src;
    this.pending.push(PRIME);
    src.push(this.opts.images[0]!);
  }

  /** The pipeline is gone: the frames still in it are lost. */
  detach(): void {
    this.src = null;
    const lost = this.pending.splice(0);
    for (const t of lost) if (t !== PRIME) this.lose(t, 'camera_error');
  }

  /** The trigger of the sample that just came out of the pipeline (null: a sample nobody pushed). */
  take(): TriggerTelegram | typeof PRIME | null {
    return this.pending.shift() ?? null;
  }

  /** A sample that could not be used (wrong size): its part is lost. */
  lose(t: TriggerTelegram, reason: LostReason): void {
    this.stats.lost++;
    this.opts.onLost({ ...t, reason });
  }

  close(): void {
    this.detach();
    const s = this.socket;
    this.socket = null;
    s?.close();
  }

  /** Exposed for tests and the in-process line: one trigger as if it came over UDP. */
  trigger(t: TriggerTelegram): void {
    // within an epoch the line numbers parts upwards: a repeated or older id is never a new part
    if (t.epoch === this.lastEpoch && t.partId <= this.lastPartId) { this.stats.repeated++; return; }
    this.lastEpoch = t.epoch;
    this.lastPartId = t.partId;
    this.stats.triggers++;
    const src = this.src;
    if (!src) { this.lose(t, 'camera_error'); return; }
    if (this.pending.length >= this.maxPending) { this.lose(t, 'dropped'); return; }
    const images = this.opts.images;
    this.pending.push(t);
    src.push(images[t.item % images.length]!);
  }

  private onDatagram(buf: Buffer): void {
    const t = decodeTrigger(buf);
    if (!t) { this.stats.invalid++; return; }
    this.trigger(t);
  }
}
