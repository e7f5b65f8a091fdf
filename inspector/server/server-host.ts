/**
 * Main-thread side of the HTTP server: starts the server worker, answers its
 * questions over RPC (health, metrics, model, liveFrame, and whatever other
 * features add with `handle()`), and posts the live feed to it.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
import { serveRpc } from './rpc.js';
import type { StationView } from './station-view.js';
import type { LiveMessage } from './live-feed.js';
// type-only: importing the worker module for values would run it here
import type { ServerWorkerData } from './server-worker.js';

export type RpcHandler = (args: any) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type StationHandlers = Pick<StationView, 'health' | 'metrics'> & Record<string, RpcHandler>;

export class ServerHost {
  private readonly closers: Array<() => void> = [];

  private constructor(private readonly worker: Worker, readonly address: string, private readonly handlers: Record<string, RpcHandler>) {}

  /** Run `fn` when the server closes (stop feeding it). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  /**
   * `handlers` answer the worker's RPC calls (mutable: `handle()` adds more later).
   * `data` tells the worker where the databases, images and shared frame buffer are.
   */
  static async start(opts: ServerWorkerData, handlers: StationHandlers, log: Logger): Promise<ServerHost> {
    const worker = spawnTsWorker(new URL('./server-worker.ts', import.meta.url), opts, { name: 'http-server' });
    const table: Record<string, RpcHandler> = { ...handlers };
    serveRpc(worker, table);
    const address = await new Promise<string>((resolve, reject) => {
      const onMsg = (m: { type?: string; address?: string; error?: { code: string; message: string } }) => {
        if (m?.type === 'listening') { worker.off('message', onMsg); resolve(m.address!); }
        if (m?.type === 'listen-error') reject(Object.assign(new Error(m.error!.message), { code: m.error!.code }));
      };
      worker.on('message', onMsg);
      worker.once('error', reject);
    });
    worker.on('error', (err) => log.error({ err }, 'server worker failed'));
    log.info({ address }, 'http server listening');
    return new ServerHost(worker, address, table);
  }

  /** Answer another RPC method from the server worker (e.g. the registry's promote). */
  handle(method: string, fn: RpcHandler): void {
    this.handlers[method] = fn;
  }

  /** Post a live-feed message (batched by LiveFeed; never per part). */
  post(m: LiveMessage): void {
    this.worker.postMessage({ type: 'live', m });
  }

  async close(): Promise<void> {
    for (const fn of this.closers) fn();
    const closed = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.worker.on('message', (m: { type?: string }) => { if (m?.type === 'closed') { clearTimeout(t); resolve(); } });
    });
    this.worker.postMessage({ type: 'close' });
    await closed;
    await this.worker.terminate();
  }
}
