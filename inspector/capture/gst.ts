/**
 * The GStreamer binding (gstreamer-superficial 1.7.4), loaded the only way that
 * works from ESM, with the minimal TypeScript types for what capture uses.
 *
 * The package has no typings and its `main` is a `.node` addon: an ESM
 * `import` fails, so it is loaded with `createRequire(import.meta.url)`.
 *
 * Facts about the binding that shape how capture uses it (read from its
 * Pipeline.cpp / GObjectWrap.cpp and verified here):
 *
 * - `new Pipeline(launch)` runs `gst_parse_launch` synchronously and throws a
 *   plain Error (after printing "GstError: …" to stderr) when the launch
 *   string does not parse or names an element that does not exist.
 * - `play()`, `pause()`, `stop()` are synchronous `gst_element_set_state`
 *   calls ON THE CALLING (main) THREAD. Elements that open devices in their
 *   READY→PAUSED transition (aravissrc, v4l2src) block the event loop for as
 *   long as opening takes, and `stop()` blocks while an element tears down.
 * - `appsink.pull(cb)` queues one `gst_app_sink_pull_sample` on the libuv
 *   thread pool: that pool thread is blocked until a sample, EOS or a flush
 *   (state change to READY/NULL) arrives. `cb(null, {})` means no sample
 *   (EOS, or the sink was stopped). Every sample is copied into a new Buffer;
 *   no PTS/DTS comes back. One `pull` delivers one sample: re-arm it.
 * - `pollBus(cb)` pops bus messages on a libuv pool thread with an infinite
 *   timeout and re-queues itself after each message until the pipeline is in
 *   the NULL state. It holds a pool thread for the life of the pipeline, and
 *   it takes a permanent reference on the Pipeline (it is never freed).
 * - Integer properties set from JS arrive as floats: put them in the launch
 *   string instead.
 *
 * So each running pipeline holds TWO libuv pool threads (one pull, one bus
 * poll). The pool is process-wide (shared with fs, sharp, dns, zlib and every
 * worker thread) and defaults to 4 threads: the service must set
 * UV_THREADPOOL_SIZE (e.g. 16) in its environment (systemd unit / launcher),
 * before Node starts, since the pool size is fixed at its first use.
 */
import { createRequire } from 'node:module';

/** A GStreamer structure (caps, message) converted to a plain object. */
export type GstStructure = Record<string, unknown>;

/** One bus message as the binding delivers it. */
export interface GstBusMessage extends GstStructure {
  /** GST_MESSAGE_TYPE_NAME: 'error', 'eos', 'warning', 'state-changed', … */
  type: string;
  /** name of the element that posted it */
  _src_element_name: string;
  /** ERROR messages: the element path */
  name?: string;
  /** ERROR messages: the GError message */
  message?: string;
  /** ERROR/WARNING messages: the debug string, when present */
  debug?: string;
}

/** Any element found with `findChild`: its GObject properties are accessors. */
export interface GstElement {
  [property: string]: unknown;
}

export interface GstAppSink extends GstElement {
  /** Pull one sample; `buf` is null at EOS or when the sink is flushing (stopped). */
  pull(cb: (buf: Buffer | null, caps: GstStructure) => void): void;
}

export interface GstAppSrc extends GstElement {
  /** Push one buffer (copied); optional second arg: 8-byte big-endian PTS in ns. */
  push(buf: Buffer, pts?: Buffer): void;
}

export interface GstPipeline {
  play(): void;
  pause(): void;
  stop(): void;
  sendEOS(): void;
  /** An element by its `name=`; undefined when none has that name. */
  findChild(name: string): GstElement | undefined;
  /** Called once per bus message, on the main thread, until the pipeline is NULL. */
  pollBus(cb: (msg: GstBusMessage) => void): void;
  /** When true (default) the bus is flushed when the pipeline goes to NULL. */
  'auto-flush-bus': boolean;
}

export interface GstPipelineConstructor {
  new (launch: string): GstPipeline;
}

interface GstModule {
  Pipeline: GstPipelineConstructor;
}

let cached: GstModule | null = null;

/** Load the native binding once (the first call initialises GStreamer). */
export function loadGst(): GstModule {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const mod = require('gstreamer-superficial') as GstModule;
  if (typeof mod?.Pipeline !== 'function') {
    throw new Error('gstreamer-superficial did not export Pipeline');
  }
  cached = mod;
  return mod;
}

/** Build a pipeline from a launch string (parses it; does not start it). */
export function createPipeline(launch: string): GstPipeline {
  const { Pipeline } = loadGst();
  return new Pipeline(launch);
}

/** Narrow a found element to an appsink (it has `pull`). */
export function asAppSink(el: GstElement | undefined): GstAppSink | null {
  return el && typeof el.pull === 'function' ? (el as GstAppSink) : null;
}

/** Narrow a found element to an appsrc (it has `push`). */
export function asAppSrc(el: GstElement | undefined): GstAppSrc | null {
  return el && typeof el.push === 'function' ? (el as GstAppSrc) : null;
}
