/**
 * A minimal request/response channel over a worker MessagePort: the server
 * worker asks, the station (main thread) answers. Unanswered requests time out
 * so a stalled station shows up as a 503, not a hung HTTP request.
 */
import type { MessagePort, Worker } from 'node:worker_threads';

type Port = Pick<MessagePort, 'postMessage' | 'on' | 'off'> | Pick<Worker, 'postMessage' | 'on' | 'off'>;

interface RpcRequest { rpc: 'req'; id: number; method: string; args?: unknown }
interface RpcResponse { rpc: 'res'; id: number; ok: boolean; value?: unknown; error?: { code: string; message: string; statusCode?: number } }

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly port: Port, private readonly timeoutMs = 2000) {
    port.on('message', (msg: RpcResponse) => {
      if (msg?.rpc !== 'res') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(Object.assign(new Error(msg.error?.message ?? 'rpc failed'), { code: msg.error?.code, statusCode: msg.error?.statusCode ?? 503 }));
    });
  }

  /** Ask the station; `args` must be structured-clonable. */
  call<T>(method: string, args?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error(`station did not answer ${method} within ${timeoutMs} ms`), { code: 'INSPECTOR_STATION_UNRESPONSIVE', statusCode: 503 }));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.port.postMessage({ rpc: 'req', id, method, args } satisfies RpcRequest);
    });
  }
}

/** Answer requests arriving on `port` with the given handlers. */
export function serveRpc(port: Port, handlers: Record<string, (args: any) => Promise<unknown>>): void {
  port.on('message', (msg: RpcRequest) => {
    if (msg?.rpc !== 'req') return;
    const h = handlers[msg.method];
    const reply = (r: Omit<RpcResponse, 'rpc' | 'id'>) => port.postMessage({ rpc: 'res', id: msg.id, ...r });
    if (!h) { reply({ ok: false, error: { code: 'INSPECTOR_RPC_UNKNOWN', message: msg.method } }); return; }
    h(msg.args).then((value) => reply({ ok: true, value }),
      (err: Error & { code?: string; statusCode?: number }) => reply({ ok: false, error: { code: err.code ?? 'INSPECTOR_UNEXPECTED', message: err.message, statusCode: err.statusCode } }));
  });
}
