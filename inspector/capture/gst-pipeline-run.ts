/**
 * One pipeline of a GstFrameSource (gst-frame-source.ts): built from the launch string
 * with its appsink `sink` (and, for a triggered camera, its appsrc `src`), and stopped so
 * that the threads it holds are released. A failed pipeline is never reused: the source
 * builds a new one.
 *
 * Threads: each live pipeline holds TWO libuv thread-pool threads (the pending
 * pull and the bus poll). The pool is process-wide and defaults to 4, shared
 * with fs, sharp, dns and worker threads: the service sets UV_THREADPOOL_SIZE
 * (e.g. 16) in its environment before Node starts. Bus polls only end when a
 * message arrives after the pipeline reached NULL, so `auto-flush-bus` is
 * turned off before stopping: the state-change messages of the stop itself
 * then wake the poll thread and it is released instead of blocking forever.
 *
 * Blocking: parsing, play() and stop() are synchronous on the main thread.
 * aravissrc opens the camera while the launch string is parsed: with the
 * camera unreachable, parse and play() block ~2.5 s each (GVCP timeouts), and
 * stop() after the camera died blocks 5–8.5 s. Those stalls happen only while
 * the camera is gone, but they stall the whole event loop (logged as warnings).
 * The binding is context-aware and loads in a worker thread: hosting the
 * source in its own worker would keep them off the station's main thread.
 */
import type { Logger } from '../core/logger.js';
import { asAppSink, asAppSrc, createPipeline, type GstAppSink, type GstAppSrc, type GstPipeline } from './gst.js';

/** A pipeline the source built, with what it has delivered so far. */
export interface Run {
  gen: number;
  pipeline: GstPipeline;
  sink: GstAppSink;
  /** samples pulled from this pipeline (wrong-size ones included): replay file index */
  samples: number;
  /** samples of this pipeline dropped for their size */
  wrongSize: number;
  /** performance.now() when play() returned */
  startedAt: number;
}

export type PipelineBuild =
  | { ok: true; pipeline: GstPipeline; sink: GstAppSink; src: GstAppSrc | null }
  /** parseError: the launch string does not parse (or names a missing element), a permanent failure */
  | { ok: false; reason: string; parseError: boolean };

/** Parse the launch string and find its appsink `sink` (and appsrc `src` when `wantSrc`). */
export function buildPipeline(launch: string, wantSrc: boolean, log: Logger): PipelineBuild {
  let pipeline: GstPipeline;
  const tParse = performance.now();
  try {
    pipeline = createPipeline(launch);
    noteBlocking(log, 'parse', performance.now() - tParse);
  } catch (err) {
    return { ok: false, reason: `pipeline cannot be built: ${(err as Error).message}`, parseError: true };
  }
  const sink = asAppSink(pipeline.findChild('sink'));
  if (!sink) return { ok: false, reason: 'the launch string has no appsink named "sink"', parseError: false };
  const src = wantSrc ? asAppSrc(pipeline.findChild('src')) : null;
  if (wantSrc && !src) return { ok: false, reason: 'a triggered template needs an appsrc named "src"', parseError: false };
  return { ok: true, pipeline, sink, src };
}

/** Stop a pipeline for good; a failure to stop is logged, never thrown. */
export function stopPipeline(pipeline: GstPipeline, log: Logger): void {
  try {
    // Keep the stop's own state-change messages on the bus: they release
    // the thread blocked in pollBus (see the header).
    pipeline['auto-flush-bus'] = false;
    const t0 = performance.now();
    pipeline.stop();
    noteBlocking(log, 'stop', performance.now() - t0);
  } catch (err) {
    log.error({ err }, 'pipeline stop failed');
  }
}

/** parse, play() and stop() run on the main thread: say when they stalled the event loop. */
export function noteBlocking(log: Logger, what: 'parse' | 'play' | 'stop', ms: number): void {
  if (ms > 100) log.warn({ ms: Math.round(ms) }, `pipeline ${what} blocked the event loop`);
  else log.debug({ ms: Math.round(ms * 10) / 10 }, `pipeline ${what}`);
}
