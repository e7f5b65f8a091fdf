/**
 * The camera in its own thread. GStreamer hands every frame over as a fresh
 * Buffer; allocating 1.3 MB per frame on the main thread made its garbage
 * collector run every ~100 ms for ~10 ms at 100 parts/s. Here that garbage
 * stays in this small isolate: each frame is copied into a free slot of the
 * shared ring and only a tiny descriptor is posted. aravissrc's multi-second
 * blocking calls (camera lost) also stall this thread, not the part loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { logger } from '../core/logger.js';
import { toErrorData } from '../core/error-transport.js';
import { createFrameSource, type CaptureConfig } from './create-source.js';
import { Counter, FrameRing, type FrameRingBuffers } from './frame-ring.js';
import type { GstFrameSource } from './gst-frame-source.js';
import { computeChecks, type ImageChecks } from '../../calibration/image-checks.js';
import type { CaptureChecksConfig } from '../../calibration/station-calibration.js';

export interface CaptureWorkerData {
  config: Omit<CaptureConfig, 'logger'>;
  ring: FrameRingBuffers;
  /** focus/exposure checks on one frame every `intervalMs` (calibration/image-checks.ts); null: off */
  checks?: CaptureChecksConfig | null;
}
export type FromCapture =
  | { t: 'started'; restarts: number }
  | { t: 'start-error'; error: ReturnType<typeof toErrorData> }
  | { t: 'state'; state: string }
  | { t: 'frame'; slot: number; seq: number; capturedNs: bigint; sourceRef: string | undefined;
      partId: number | undefined; lineEpoch: number | undefined; item: number | undefined }
  /** a triggered part that did not become a frame for the station (every one is reported) */
  | { t: 'lost'; epoch: number; partId: number; item: number; reason: 'dropped' | 'camera_error' }
  /** the camera failed for good after it had started (start-error is only for start()) */
  | { t: 'failed'; error: ReturnType<typeof toErrorData> }
  /** `gen`: the check settings it was computed with (0: those the worker started with; see 'set-checks') */
  | { t: 'checks'; checks: ImageChecks; gen: number }
  | { t: 'stopped' };
export type ToCapture =
  | { t: 'start' } | { t: 'stop' }
  /** new ROI / interval for the focus/exposure checks (null: off); applied between two frames, the next frame is sampled */
  | { t: 'set-checks'; checks: CaptureChecksConfig | null; gen: number };

if (!parentPort) throw new Error('capture-worker must run in a worker thread');
const port = parentPort;
const { config, ring: ringBuffers } = workerData as CaptureWorkerData;
/** the check settings in force (replaced by 'set-checks' without stopping the camera) and their generation */
let checks = (workerData as CaptureWorkerData).checks ?? null;
let checksGen = 0;
const ring = new FrameRing(ringBuffers);
const log = logger.child({ mod: 'capture' });
let source: GstFrameSource | null = null;
let lastCheckMs = 0;

function publishStats(s: GstFrameSource): void {
  ring.set(Counter.FRAMES, s.stats.frames);
  ring.set(Counter.RESTARTS, s.stats.restarts);
  ring.set(Counter.ERRORS, s.stats.errors);
  ring.set(Counter.LAST_SEQ, s.lastSeq);
}

async function pump(s: GstFrameSource): Promise<void> {
  for await (const frame of s) {
    publishStats(s);
    const slot = ring.claim();
    if (slot < 0) { // counted, never silent; a triggered part is reported with its id
      ring.count(Counter.RING_FULL_DROPS);
      if (frame.partId !== undefined && frame.lineEpoch !== undefined) {
        port.postMessage({ t: 'lost', epoch: frame.lineEpoch, partId: frame.partId, item: frame.item ?? 0, reason: 'dropped' } satisfies FromCapture);
      }
      continue;
    }
    ring.views[slot]!.set(frame.data);
    port.postMessage({ t: 'frame', slot, seq: frame.seq, capturedNs: frame.capturedNs, sourceRef: frame.sourceRef,
      partId: frame.partId, lineEpoch: frame.lineEpoch, item: frame.item } satisfies FromCapture);
    // about once a second: focus/exposure of this frame, from this thread's own copy (~1 ms, strided)
    if (checks && Date.now() - lastCheckMs >= checks.intervalMs) {
      lastCheckMs = Date.now();
      port.postMessage({ t: 'checks', gen: checksGen,
        checks: computeChecks(frame.data, config.width, config.height, { roi: checks.roi, step: checks.step }) } satisfies FromCapture);
    }
  }
  publishStats(s);
}

async function start(): Promise<void> {
  let started = false;
  try {
    source = await createFrameSource({ ...config, logger: log }, {
      onLost: (p) => {
        // a triggered part the camera could not take (too many frames waiting in it, or replaced in its
        // mailbox) is a dropped frame as much as a full ring is: counted with those (CaptureHost.stats.dropped)
        if (p.reason === 'dropped') ring.count(Counter.RING_FULL_DROPS);
        port.postMessage({ t: 'lost', epoch: p.epoch, partId: p.partId, item: p.item, reason: p.reason } satisfies FromCapture);
      },
    });
    source.on('state', (state: string) => { publishStats(source!); port.postMessage({ t: 'state', state } satisfies FromCapture); });
    source.on('error', (err: Error) => log.warn({ err: err.message }, 'camera error'));
    await source.start();
    started = true;
    port.postMessage({ t: 'started', restarts: source.stats.restarts } satisfies FromCapture);
    const timer = setInterval(() => publishStats(source!), 200);
    await pump(source);
    clearInterval(timer);
    port.postMessage({ t: 'stopped' } satisfies FromCapture);
  } catch (err) {
    source?.stop();
    // after start() the host no longer waits for start-error: a later failure has its own message
    port.postMessage(started ? { t: 'failed', error: toErrorData(err) } satisfies FromCapture
      : { t: 'start-error', error: toErrorData(err) } satisfies FromCapture);
  }
}

port.on('message', (m: ToCapture) => {
  if (m.t === 'start') void start();
  if (m.t === 'set-checks') {
    // messages run between two iterations of pump(): the next frame is the first under the new settings
    checks = m.checks;
    checksGen = m.gen;
    lastCheckMs = 0; // sample the next frame, so the new ROI is judged at once
  }
  if (m.t === 'stop') {
    if (source) source.stop();
    else port.postMessage({ t: 'stopped' } satisfies FromCapture);
  }
});
