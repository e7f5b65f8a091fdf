/**
 * CPU priority of the station's threads: the hot path (trigger → frame → verdict → PLC) above
 * everything else the station runs, when the config asks for it (`station.hotPathNice`).
 *
 * Linux nice values are per thread, and a new thread starts with the nice of the thread that
 * created it. So the main thread (part loop, PLC write) and the threads the process already has
 * (libuv's pool, where the capture worker's appsink pulls block) are raised first, at station start, and
 * then every worker thread sets its own value before it loads anything (spawn-ts-worker.ts's
 * bootstrap): the capture and live inference workers the hot value (GStreamer's streaming
 * threads and ORT's pool threads, created by them, inherit it), every other worker the process's
 * base nice (store, server, MQTT, vision server) or its own lower priority (images and retention
 * 19, shadow/validation inference, exports and heatmaps 10), set inside that worker as before.
 *
 * Raising priority needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (the systemd unit's
 * `LimitNICE=-10`); without it the station runs as before and says so once.
 */
import { readdirSync, stat } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** the process's nice when this module loaded (before any thread was raised) */
const BASE_NICE = getPriority(0);
/** the hot path's nice once the main thread was raised; null: nothing raised, threads inherit as before */
let hotNice: number | null = null;

export type RaiseResult = { raised: true; nice: number } | { raised: false; nice: number; reason: string };

/** Raise the calling (main) thread to `nice`; later threads are then placed by threadNice(). */
export function raiseHotPath(nice: number): RaiseResult {
  try {
    setPriority(0, nice);
  } catch (err) {
    return { raised: false, nice: BASE_NICE, reason: (err as Error).message };
  }
  hotNice = nice;
  // the threads that exist already: libuv's pool (the capture worker's appsink pulls and bus polls
  // block in it: hot path), V8's platform threads. Then make sure the pool exists, created from
  // this thread: libuv starts all its threads at the first queued work, whichever thread queues it.
  for (const tid of threadIds()) { try { setPriority(tid, nice); } catch { /* exited meanwhile */ } }
  stat('/', () => undefined);
  return { raised: true, nice };
}

/** This process's thread ids (Linux; elsewhere only the calling thread is placed). */
function threadIds(): number[] {
  try { return readdirSync('/proc/self/task').map(Number); } catch { return []; }
}

/**
 * The nice a new worker thread of this role should set first; undefined: keep the inherited one
 * (the hot path was not raised, or this is a worker's own thread, where nothing was raised).
 */
export function threadNice(role: 'hot' | 'normal'): number | undefined {
  if (hotNice === null) return undefined;
  return role === 'hot' ? hotNice : BASE_NICE;
}

/** Back to the base (tests, and a station stopped inside a process that goes on). */
export function lowerHotPath(): void {
  if (hotNice === null) return;
  for (const tid of [0, ...threadIds()]) {
    try { if (getPriority(tid) === hotNice) setPriority(tid, BASE_NICE); } catch { /* exited meanwhile; lowering is always allowed */ }
  }
  hotNice = null;
}
