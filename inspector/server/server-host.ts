/**
 * Main-thread side of the HTTP server: starts the server worker and answers
 * its questions (health, metrics) from the station's live state.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import { spawnTsWorker } from '../core/spawn-ts-worker.js';
import { serveRpc } from './rpc.js';
import type { StationView } from './station-view.js';

export class ServerHost {
  private constructor(private readonly worker: Worker, readonly address: string) {}

  static async start(opts: { host: string; port: number }, view: StationView, log: Logger): Promise<ServerHost> {
    const worker = spawnTsWorker(new URL('./server-worker.ts', import.meta.url), opts);
    serveRpc(worker, { health: () => view.health(), metrics: () => view.metrics() });
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
    return new ServerHost(worker, address);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.worker.on('message', (m: { type?: string }) => { if (m?.type === 'closed') { clearTimeout(t); resolve(); } });
    });
    this.worker.postMessage({ type: 'close' });
    await closed;
    await this.worker.terminate();
  }
}
