/**
 * Runs the Fastify server in its own worker thread, so HTTP traffic never
 * shares the event loop with the part loop. Station state comes over RPC;
 * the live feed arrives as batched messages and fans out over WebSocket.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { logger } from '../core/logger.js';
import { buildApp, type AppOptions } from './app.js';
import { RpcClient } from './rpc.js';
import { LiveHub } from './live-hub.js';
import type { LiveMessage } from './live-feed.js';
import type { StationView } from './station-view.js';
import { openCvJobs } from './routes/calibration-opencv.js';

export interface ServerWorkerData {
  host: string;
  port: number;
  /** what buildApp needs besides the view (paths, review rules) */
  app?: Pick<AppOptions, 'reviewDbPath' | 'resultsDbPath' | 'imagesDir' | 'doubtMargin' | 'stationClasses' | 'cookieSecure' | 'uiDir' | 'calibrationDir'>;
  /** the station's newest-frame buffer (LiveFeed.frameBuffer) */
  liveFrameBuffer?: SharedArrayBuffer;
  /** HTTPS: the certificate (chain) and key as PEM (server/tls.ts); absent: plain HTTP (server.tls.mode 'off') */
  tls?: { cert: string; key: string };
}

/** Besides RPC requests (rpc.ts): */
export type FromServerWorker =
  | { type: 'listening'; address: string }
  | { type: 'listen-error'; error: { code: string; message: string } }
  | { type: 'closed' }
  /** a worker of this worker died (the calibration OpenCV worker: never restarted) */
  | { type: 'worker-death'; worker: string; reason: string };
/** Besides RPC responses (rpc.ts): */
export type ToServerWorker = { type: 'live'; m: LiveMessage } | { type: 'close' };

if (!parentPort) throw new Error('server-worker must run in a worker thread');
const port = parentPort;
const data = workerData as ServerWorkerData;
const rpc = new RpcClient(port);
const view: StationView = {
  health: () => rpc.call('health'),
  metrics: () => rpc.call('metrics'),
  call: <T>(method: string, args?: unknown, timeoutMs?: number) => rpc.call<T>(method, args, timeoutMs),
};
const live = new LiveHub();
port.on('message', (msg: { type?: string; m?: LiveMessage }) => {
  if (msg?.type === 'live' && msg.m) live.publish(msg.m);
});

// the calibration OpenCV worker (started on demand by the calibration routes) is this thread's: its death is told to the station
openCvJobs.on('worker-death', (d: { worker: string; reason: string }) =>
  port.postMessage({ type: 'worker-death', worker: d.worker, reason: d.reason } satisfies FromServerWorker));

const app = await buildApp({ ...data.app, view, live, liveFrameBuffer: data.liveFrameBuffer, logger: logger.child({ mod: 'server' }),
  ...(data.tls ? { https: data.tls } : {}) });
try {
  const address = await app.listen({ host: data.host, port: data.port });
  port.postMessage({ type: 'listening', address } satisfies FromServerWorker);
} catch (err) {
  port.postMessage({ type: 'listen-error', error: { code: (err as { code?: string }).code ?? 'INSPECTOR_LISTEN', message: (err as Error).message } } satisfies FromServerWorker);
}
port.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'close') void app.close().then(() => port.postMessage({ type: 'closed' } satisfies FromServerWorker));
});
