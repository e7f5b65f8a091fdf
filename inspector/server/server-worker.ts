/**
 * Runs the Fastify server in its own worker thread, so HTTP traffic never
 * shares the event loop with the part loop. Station state comes over RPC.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { logger } from '../core/logger.js';
import { buildApp } from './app.js';
import { RpcClient } from './rpc.js';
import type { StationView } from './station-view.js';

interface ServerWorkerData { host: string; port: number }

if (!parentPort) throw new Error('server-worker must run in a worker thread');
const port = parentPort;
const { host, port: listenPort } = workerData as ServerWorkerData;
const rpc = new RpcClient(port);
const view: StationView = {
  health: () => rpc.call('health'),
  metrics: () => rpc.call('metrics'),
};

const app = await buildApp({ view, logger: logger.child({ mod: 'server' }) });
try {
  const address = await app.listen({ host, port: listenPort });
  port.postMessage({ type: 'listening', address });
} catch (err) {
  port.postMessage({ type: 'listen-error', error: { code: (err as { code?: string }).code ?? 'INSPECTOR_LISTEN', message: (err as Error).message } });
}
port.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'close') void app.close().then(() => port.postMessage({ type: 'closed' }));
});
