/**
 * The camera in its own thread. GStreamer hands every frame over as a fresh
 * Buffer; allocating 1.3 MB per frame on the main thread made its garbage
 * collector run every ~100 ms for ~10 ms at 100 parts/s. Here that garbage
 * stays in this small isolate: each frame is copied into a free slot of the
 * shared ring and only a tiny descriptor is posted. aravissrc's multi-second
 * blocking calls (camera lost) also stall this thread, not the part loop.
 *
 * Supervised (capture-host.ts, core/supervised-worker.ts): the camera starts as
 * soon as this worker is loaded; `started` is the ready handshake, `start-error`
 * a failed start. A respawned worker gets the same ring and `resume` (the
 * counters and last seq of the one before), so seq and the counters continue.
 *
 * Dying with a live pipeline would take the whole process down: a thread that
 * ends while its GStreamer pull and bus poll are pending on libuv's pool aborts
 * Node (uv_loop_close with requests in flight). So every uncaught error here
 * stops the pipeline first (synchronously, which releases those requests) and
 * only then ends the thread (exit code 70): the host sees a death and respawns.
 * For the same reason this worker is never terminate()d while its pipeline runs:
 * the host stops it with a 'stop' message first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { logger } from '../core/logger.js';
import { toErrorData } from '../core/error-transport.js';
import { CaptureError } from '../core/errors.js';
import { createFrameSource, type CaptureConfig } from './create-source.js';
import { Counter, FrameRing, type FrameRingBuffers } from './frame-ring.js';
import type { GstFrameSource } from './gst-frame-source.js';
import { computeChecks, type ImageChecks } from '../../calibration/image-checks.js';
import type { CaptureChecksConfig } from '../../calibration/station-calibration.js';

/** Where a respawned worker carries on: the published counters of the worker before it. */
export interface CaptureResume { seq: number; frames: number; restarts: number; errors: number }

export interface CaptureWorkerData {
  config: Omit<CaptureConfig, 'logger'>;
  ring: FrameRingBuffers;
  /** focus/exposure checks on one frame every `intervalMs` (calibration/image-checks.ts); null: off */
  checks?: CaptureChecksConfig | null;
  /** the generation of `checks` (see 'set-checks'; default 0) */
  checksGen?: number;
  /** a respawn: seq and counters continue from these (null/absent: the first worker) */
  resume?: CaptureResume | null;
  /** tests only: obey { t: 'debug-crash' } */
  testHooks?: boolean;
}
/** Exit code of a worker that stopped its pipeline after an uncaught error. */
export const CAPTURE_CRASH_EXIT_CODE = 70;
export type FromCapture =
  | { t: 'started'; restarts: number }
  | { t: 'start-error'; error: ReturnType<typeof toErrorData> }
  | { t: 'state'; state: string }
  | { t: 'frame'; slot: number; seq: number; capturedNs: bigint; triggeredNs: bigint | undefined; sourceRef: string | undefined;
      partId: number | undefined; lineEpoch: number | undefined; item: number | undefined; rehearsal: boolean }
  /** a triggered part that did not become a frame for the station (every one is reported) */
  | { t: 'lost'; epoch: number; partId: number; item: number; reason: 'dropped' | 'camera_error' }
  /** the worker is about to end after an uncaught error (its pipeline is stopped already) */
  | { t: 'crashed'; error: ReturnType<typeof toErrorData> }
  /** `gen`: the check settings it was computed with (see 'set-checks') */
  | { t: 'checks'; checks: ImageChecks; gen: number }
  | { t: 'stopped' };
export type ToCapture =
  | { t: 'stop' }
  /** one rehearsal frame through the camera (station/rehearsal.ts); refused silently once the line runs */
  | { t: 'rehearse' }
  /** new ROI / interval for the focus/exposure checks (null: off); applied between two frames, the next frame is sampled */
  | { t: 'set-checks'; checks: CaptureChecksConfig | null; gen: number }
  /** tests only (workerData.testHooks): an uncaught error in this thread, as a bug would throw */
  | { t: 'debug-crash' };

if (!parentPort) throw new Error('capture-worker must run in a worker thread');
const port = parentPort;
const data = workerData as CaptureWorkerData;
const { config, ring: ringBuffers } = data;
const base: CaptureResume = data.resume ?? { seq: 0, frames: 0, restarts: 0, errors: 0 };
/** the check settings in force (replaced by 'set-checks' without stopping the camera) and their generation */
let checks = data.checks ?? null;
let checksGen = data.checksGen ?? 0;
const ring = new FrameRing(ringBuffers);
const log = logger.child({ mod: 'capture' });
let source: GstFrameSource | null = null;
/** the pump has ended (stopped) or the start failed: a 'stop' is answered at once */
let finished = false;
/** the host asked for a stop (possibly while the source was still being created) */
let stopRequested = false;
let lastCheckMs = 0;

function publishStats(s: GstFrameSource): void {
  ring.set(Counter.FRAMES, base.frames + s.stats.frames);
  ring.set(Counter.RESTARTS, base.restarts + s.stats.restarts);
  ring.set(Counter.ERRORS, base.errors + s.stats.errors);
  ring.set(Counter.LAST_SEQ, base.seq + s.lastSeq);
}

// Before anything can throw: an uncaught error stops the pipeline, then ends the thread (see the header).
process.on('uncaughtException', (err) => {
  const s = source;
  if (s) {
    s.removeAllListeners('state'); // the host learns of the death from the exit, not from a 'stopped'
    try { s.stop(); } catch { /* ending anyway */ }
    try { publishStats(s); } catch { /* ending anyway */ }
  }
  try { port.postMessage({ t: 'crashed', error: toErrorData(err) } satisfies FromCapture); } catch { /* ending anyway */ }
  process.exit(CAPTURE_CRASH_EXIT_CODE);
});

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
    port.postMessage({ t: 'frame', slot, seq: base.seq + frame.seq, capturedNs: frame.capturedNs, triggeredNs: frame.triggeredNs, sourceRef: frame.sourceRef,
      partId: frame.partId, lineEpoch: frame.lineEpoch, item: frame.item, rehearsal: frame.rehearsal === true } satisfies FromCapture);
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
  try {
    source = await createFrameSource({ ...config, logger: log }, {
      onLost: (p) => {
        // a triggered part the camera could not take (too many frames waiting in it, or replaced in its
        // mailbox) is a dropped frame as much as a full ring is: counted with those (CaptureHost.stats.dropped)
        if (p.reason === 'dropped') ring.count(Counter.RING_FULL_DROPS);
        port.postMessage({ t: 'lost', epoch: p.epoch, partId: p.partId, item: p.item, reason: p.reason } satisfies FromCapture);
      },
    });
    if (stopRequested) throw new CaptureError('the camera was stopped before its first frame');
    source.on('state', (state: string) => { publishStats(source!); port.postMessage({ t: 'state', state } satisfies FromCapture); });
    source.on('error', (err: Error) => log.warn({ err: err.message }, 'camera error'));
    await source.start();
    port.postMessage({ t: 'started', restarts: base.restarts + source.stats.restarts } satisfies FromCapture);
  } catch (err) {
    source?.stop();
    finished = true;
    port.postMessage({ t: 'start-error', error: toErrorData(err) } satisfies FromCapture);
    return;
  }
  const timer = setInterval(() => publishStats(source!), 200);
  // a failure after the start is this worker's death (uncaught: the handler above), and the host respawns it
  await pump(source);
  clearInterval(timer);
  finished = true;
  port.postMessage({ t: 'stopped' } satisfies FromCapture);
}

port.on('message', (m: ToCapture) => {
  if (m.t === 'rehearse') { source?.rehearse(); return; }
  if (m.t === 'set-checks') {
    // messages run between two iterations of pump(): the next frame is the first under the new settings
    checks = m.checks;
    checksGen = m.gen;
    lastCheckMs = 0; // sample the next frame, so the new ROI is judged at once
  }
  if (m.t === 'stop') {
    stopRequested = true;
    if (finished) port.postMessage({ t: 'stopped' } satisfies FromCapture);
    else if (source) source.stop(); // start() (start-error) or pump() ('stopped') answers
    // else the source is still being created: start() sees stopRequested and answers
  }
  if (m.t === 'debug-crash' && data.testHooks) {
    setImmediate(() => { throw new Error('capture worker: crash requested by a test (debugKill)'); });
  }
});

// the camera starts with the worker: 'started' (or 'start-error') is the supervisor's ready handshake
void start();
