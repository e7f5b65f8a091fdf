/**
 * Main-thread side of the HTTP server: starts the server worker, answers its
 * questions over RPC (health, metrics, model, liveFrame, and whatever other
 * features add with `handle()`), and posts the live feed to it.
 *
 * Supervised (core/supervised-worker.ts): 'listening' is the ready handshake,
 * 'listen-error' a failed start. A server worker that dies is respawned with
 * backoff on the same host and port (a port that is still taken fails that
 * start, which backs off further); the RPC table is this thread's, so every
 * handler (those added by handle() too) answers the new worker; an answer to a
 * request of a dead worker is dropped. Live-feed posts while it is down are
 * dropped (the next batch carries on). Each death: 'worker-death'
 * ({ worker: 'server', reason, generation, deaths }); each respawn ready:
 * 'worker-ready'; counters: `supervision`. The calibration OpenCV worker lives
 * inside the server worker (routes/calibration-opencv.ts): its deaths arrive here
 * as 'worker-death' with worker 'calibration-opencv' (counted in `calibrationDeaths`).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker, type BackoffOptions } from '../core/supervised-worker.js';
import { relayWorkerEvents, supervisionOf, type WorkerDeathEvent, type WorkerSupervision } from '../core/worker-events.js';
import { answerRpc } from './rpc.js';
import type { StationView } from './station-view.js';
import type { LiveMessage } from './live-feed.js';
// type-only: importing the worker module for values would run it here
import type { FromServerWorker, ServerWorkerData, ToServerWorker } from './server-worker.js';

export type RpcHandler = (args: any) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type StationHandlers = Pick<StationView, 'health' | 'metrics'> & Record<string, RpcHandler>;

const WORKER_URL = new URL('./server-worker.ts', import.meta.url);

export interface ServerHostOptions {
  /** backoff of the respawns (default 200 ms doubling up to 30 s, ±20 %) */
  restartBackoff?: Partial<BackoffOptions>;
  /** tests only, never in a station config: debugKill() ends the worker */
  testHooks?: boolean;
}

type Listening = Extract<FromServerWorker, { type: 'listening' }>;

export class ServerHost extends EventEmitter {
  private readonly closers: Array<() => void> = [];
  /** deaths of the calibration OpenCV worker (inside the server worker; never restarted) */
  calibrationDeaths = 0;
  /** the HTTPS certificate served (set by start-server.ts; null: plain HTTP) */
  tls: { fingerprint256: string; source: 'self-signed' | 'files'; certFile: string } | null = null;
  private constructor(private readonly sw: SupervisedWorker<Listening>, readonly address: string, private readonly handlers: Record<string, RpcHandler>,
    private readonly testHooks: boolean) {
    super();
  }

  /** Run `fn` when the server closes (stop feeding it). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  /**
   * `handlers` answer the worker's RPC calls (mutable: `handle()` adds more later).
   * `data` tells the worker where the databases, images and shared frame buffer are.
   */
  static async start(opts: ServerWorkerData, handlers: StationHandlers, log: Logger, hostOpts: ServerHostOptions = {}): Promise<ServerHost> {
    const table: Record<string, RpcHandler> = { ...handlers };
    let port = opts.port; // a respawn listens where the first worker did (port 0: the one it got)
    const sw = new SupervisedWorker<Listening>({
      name: 'http-server', url: WORKER_URL,
      workerData: (): ServerWorkerData => ({ ...opts, port }),
      ready: (m) => ((m as FromServerWorker | null)?.type === 'listening' ? m as Listening : undefined),
      startError: (m) => {
        const e = m as FromServerWorker | null;
        return e?.type === 'listen-error' ? Object.assign(new Error(e.error.message), { code: e.error.code }) : undefined;
      },
      ...(hostOpts.restartBackoff ? { backoff: hostOpts.restartBackoff } : {}),
    });
    let host: ServerHost | null = null;
    sw.on('message', (m: FromServerWorker, generation: number) => {
      // answers go to the worker that asked, never to its successor (request ids restart with each worker)
      if (answerRpc(m, table, (res) => { if (sw.generation === generation) sw.worker?.postMessage(res); })) return;
      if (m?.type === 'worker-death' && host) host.onInnerDeath(m.worker, m.reason);
    });
    const first = await sw.start();
    const address = first.address;
    port = Number(new URL(address).port) || port;
    host = new ServerHost(sw, address, table, hostOpts.testHooks === true);
    relayWorkerEvents(sw, 'server', log, (event, payload) => host!.emit(event, payload));
    sw.on('ready', (m: Listening, info: { restart: boolean }) => { if (info.restart) log.info({ address: m.address }, 'http server listening again'); });
    log.info({ address }, 'http server listening');
    return host;
  }

  /** Deaths and respawns of the server worker. */
  get supervision(): WorkerSupervision { return supervisionOf('server', this.sw); }

  /** Answer another RPC method from the server worker (e.g. the registry's promote). */
  handle(method: string, fn: RpcHandler): void {
    this.handlers[method] = fn;
  }

  /** Post a live-feed message (batched by LiveFeed; never per part). Dropped while the worker is being respawned. */
  post(m: LiveMessage): void {
    this.sw.post({ type: 'live', m } satisfies ToServerWorker);
  }

  /** Tests only (option testHooks): end the worker for real (terminate), as a crash would; it is respawned. */
  async debugKill(): Promise<void> {
    if (!this.testHooks) throw new Error('debugKill() needs the testHooks option');
    await this.sw.worker?.terminate();
  }

  async close(): Promise<void> {
    for (const fn of this.closers) fn();
    if (this.sw.state === 'ready') {
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(t); this.sw.off('message', onMsg); this.sw.off('death', done); resolve(); };
        const onMsg = (m: FromServerWorker): void => { if (m?.type === 'closed') done(); };
        const t = setTimeout(done, 2000);
        this.sw.on('message', onMsg);
        this.sw.on('death', done);
        this.sw.post({ type: 'close' } satisfies ToServerWorker);
      });
    }
    await this.sw.close();
  }

  /** A worker of the server worker died (the calibration OpenCV worker). */
  private onInnerDeath(worker: string, reason: string): void {
    this.calibrationDeaths++;
    this.emit('worker-death', { worker, reason, generation: 1, deaths: this.calibrationDeaths } satisfies WorkerDeathEvent);
  }
}
