/**
 * What a GstFrameSource (gst-frame-source.ts) is built from: the launch string and frame
 * size, the restart policy and the timeouts of its supervision, and the events it emits.
 * Importers keep using gst-frame-source.ts, which re-exports these types.
 */
import { CaptureError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SourceState } from './frame-source.js';
import type { TriggeredFeed } from './triggered-feed.js';

export interface RestartPolicy {
  /** first wait before rebuilding a failed pipeline */
  initialDelayMs: number;
  /** the wait doubles per consecutive failure up to this */
  maxDelayMs: number;
}

export interface GstFrameSourceOptions {
  /** gst-launch string ending in an appsink named `sink` (see pipeline-templates.ts) */
  launch: string;
  width: number;
  height: number;
  /** replay: frame n of a pipeline run came from sourceRefs[(n-1) % length] */
  sourceRefs?: string[];
  restart: RestartPolicy;
  /** start() rejects when no valid frame arrived within this */
  firstFrameTimeoutMs: number;
  /** a pipeline that delivers no valid frame for this long is restarted */
  stallTimeoutMs: number;
  /** used as is: pass a child logger, e.g. logger.child({ mod: 'capture' }) */
  logger: Logger;
  /**
   * A triggered camera (pipelines with `"trigger": true`): the line's triggers feed the
   * pipeline's appsrc `src`, each frame carries its trigger's (Epoch, PartId), and every
   * trigger that does not become a frame is reported lost through the feed.
   */
  feed?: TriggeredFeed;
}

export interface GstFrameSourceEvents {
  state: [state: SourceState, previous: SourceState];
  error: [err: Error];
}

/** Throws a CaptureError for a frame size or restart policy the source cannot run with. */
export function checkFrameSourceOptions(opts: GstFrameSourceOptions): void {
  const { width, height } = opts;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new CaptureError(`frame size ${width}x${height} is invalid`);
  }
  if (opts.restart.initialDelayMs < 0 || opts.restart.maxDelayMs < opts.restart.initialDelayMs) {
    throw new CaptureError('restart delays are invalid');
  }
}

/** The wait before the rebuild after `failures` consecutive failures: initialDelayMs doubling up to maxDelayMs. */
export function restartDelay(policy: RestartPolicy, failures: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (failures - 1));
}
