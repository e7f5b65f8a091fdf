/**
 * Main-thread side of the OPC 40100 vision server: starts its worker (vision-worker.ts)
 * through the one supervisor (core/supervised-worker.ts), answers its RPCs with the
 * station's narrow ports (vision-ports.ts), and tells it when the station's fault changes.
 *
 * Supervised like the HTTP server: 'listening' is the ready handshake, 'listen-error' a
 * failed start; a worker that dies is respawned with backoff on the same port and resumes
 * the state machine's last state (the inspecting switch lives on this thread and is not
 * touched by a death). Each death: 'worker-death' ({ worker: 'vision-server', … }); each
 * respawn ready: 'worker-ready'; counters: `supervision` (watched by station/worker-deaths.ts).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker, type BackoffOptions } from '../core/supervised-worker.js';
import { relayWorkerEvents, supervisionOf, type WorkerSupervision } from '../core/worker-events.js';
import { answerRpc } from '../server/rpc.js';
import { visionRpcHandlers, type VisionPorts } from './vision-ports.js';
import type { VisionState } from './vision-state-machine.js';
import type { FromVisionWorker, ToVisionWorker, VisionWorkerData } from './vision-protocol.js';

const WORKER_URL = new URL('./vision-worker.ts', import.meta.url);

/** How often the station's fault is looked at (a few reads of the alarms; off the part loop's path). */
const FAULT_POLL_MS = 250;

export type VisionHostData = Omit<VisionWorkerData, 'inspecting' | 'fault' | 'resume'>;

type Listening = Extract<FromVisionWorker, { type: 'listening' }>;

export class VisionServerHost extends EventEmitter {
  /** the state machine's state as the worker last reported it */
  state: VisionState | null = null;
  private fault: string | null;
  private readonly faultTimer: NodeJS.Timeout;

  private constructor(private readonly sw: SupervisedWorker<Listening>, readonly endpoint: string, private readonly ports: VisionPorts) {
    super();
    this.fault = ports.fault();
    this.faultTimer = setInterval(() => {
      const f = this.ports.fault();
      if (f === this.fault) return;
      this.fault = f;
      this.sw.post({ type: 'fault', fault: f } satisfies ToVisionWorker);
    }, FAULT_POLL_MS);
    this.faultTimer.unref();
  }

  static async start(data: VisionHostData, ports: VisionPorts, log: Logger, backoff?: Partial<BackoffOptions>): Promise<VisionServerHost> {
    const handlers = visionRpcHandlers(ports);
    let port = data.port; // a respawn listens where the first worker did (port 0: the one it got)
    let host: VisionServerHost | null = null;
    const sw = new SupervisedWorker<Listening>({
      name: 'vision-server', url: WORKER_URL,
      workerData: (): VisionWorkerData => ({ ...data, port, inspecting: ports.inspection.inspecting, fault: ports.fault(), resume: host?.state ?? null }),
      ready: (m) => ((m as FromVisionWorker | null)?.type === 'listening' ? m as Listening : undefined),
      startError: (m) => {
        const e = m as FromVisionWorker | null;
        return e?.type === 'listen-error' ? Object.assign(new Error(e.error.message), { code: e.error.code }) : undefined;
      },
      ...(backoff ? { backoff } : {}),
    });
    let first: VisionState | null = null;
    sw.on('message', (m: FromVisionWorker, generation: number) => {
      // answers go to the worker that asked, never to its successor
      if (answerRpc(m, handlers, (res) => { if (sw.generation === generation) sw.worker?.postMessage(res); })) return;
      if (m?.type === 'state') {
        if (host) host.state = m.state; else first = m.state;
        log.info({ state: m.state, transition: m.transition }, 'vision state');
      }
    });
    const ready = await sw.start();
    const endpoint = ready.endpoint;
    port = Number(new URL(endpoint.replace(/^opc\.tcp:/, 'http:')).port) || port;
    host = new VisionServerHost(sw, endpoint, ports);
    host.state = first;
    relayWorkerEvents(sw, 'vision-server', log, (event, payload) => host!.emit(event, payload));
    return host;
  }

  get supervision(): WorkerSupervision { return supervisionOf('vision-server', this.sw); }

  async close(): Promise<void> {
    clearInterval(this.faultTimer);
    if (this.sw.state === 'ready') {
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(t); this.sw.off('message', onMsg); this.sw.off('death', done); resolve(); };
        const onMsg = (m: FromVisionWorker): void => { if (m?.type === 'closed') done(); };
        const t = setTimeout(done, 5000);
        this.sw.on('message', onMsg);
        this.sw.on('death', done);
        this.sw.post({ type: 'close' } satisfies ToVisionWorker);
      });
    }
    await this.sw.close();
  }
}
