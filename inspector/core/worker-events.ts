/**
 * What every host of a supervised worker (core/supervised-worker.ts) tells the
 * station, in one shape, so that each death is an alarm and a metric:
 *
 *   host.on('worker-death', (d: WorkerDeathEvent) => …);  // { worker, reason, generation, deaths }
 *   host.on('worker-ready', (r: WorkerReadyEvent) => …);  // a respawned worker is ready again
 *   host.supervision                                       // WorkerSupervision: deaths, restarts, state
 *
 * This is the shape station/worker-deaths.ts watches (`workerDeaths.watch(name, host)`),
 * the same ModelRunner emits for the inference worker.
 */
import type { Logger } from './logger.js';
import type { SupervisedState, SupervisedWorker } from './supervised-worker.js';

export interface WorkerDeathEvent {
  /** which worker: 'capture', 'images', 'store', 'server', 'retention', 'calibration-opencv' */
  worker: string;
  reason: string;
  /** the generation that died (1: the first worker) */
  generation: number;
  /** deaths of this host's worker so far, this one included */
  deaths: number;
}

export interface WorkerReadyEvent {
  worker: string;
  /** the generation now serving */
  generation: number;
  /** respawned workers that got ready so far */
  restarts: number;
}

/** Supervision counters of one host's worker. */
export interface WorkerSupervision {
  worker: string;
  state: SupervisedState;
  /** workers that exited, crashed, failed a restart or were killed */
  deaths: number;
  /** respawned workers that got ready */
  restarts: number;
  /** 1 for the first worker, +1 per spawn */
  generation: number;
  lastDeathReason: string | null;
}

export function supervisionOf<R>(worker: string, sw: SupervisedWorker<R>): WorkerSupervision {
  return { worker, state: sw.state, deaths: sw.deaths, restarts: sw.restarts, generation: sw.generation, lastDeathReason: sw.lastDeathReason };
}

/**
 * Log the supervisor's deaths and respawns and hand them on as 'worker-death' / 'worker-ready'
 * through `emit` (the host's own emit). Call it after the host's own 'death' listeners are on,
 * so that the host has cleaned up (freed slots, failed jobs) before anybody hears of the death.
 */
export function relayWorkerEvents<R>(
  sw: SupervisedWorker<R>, worker: string, log: Logger,
  emit: (event: 'worker-death' | 'worker-ready', payload: WorkerDeathEvent | WorkerReadyEvent) => void,
): void {
  sw.on('death', (d: { reason: string; generation: number; deaths: number }) => {
    log.error({ worker, reason: d.reason, generation: d.generation, deaths: d.deaths }, `${worker} worker died`);
    emit('worker-death', { worker, reason: d.reason, generation: d.generation, deaths: d.deaths });
  });
  sw.on('restarting', (r: { attempt: number; delayMs: number }) => {
    log.warn({ worker, attempt: r.attempt, delayMs: r.delayMs }, `${worker} worker: respawning`);
  });
  sw.on('restarted', (r: { generation: number; restarts: number }) => {
    log.info({ worker, generation: r.generation, restarts: r.restarts }, `${worker} worker respawned`);
    emit('worker-ready', { worker, generation: r.generation, restarts: r.restarts });
  });
}
