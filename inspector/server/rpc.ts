/**
 * A minimal request/response channel over a worker MessagePort: the server
 * worker asks, the station (main thread) answers. Unanswered requests time out
 * so a stalled station shows up as a 503, not a hung HTTP request.
 */
import type { MessagePort, Worker } from 'node:worker_threads';

type Port = Pick<MessagePort, 'postMessage' | 'on' | 'off'> | Pick<Worker, 'postMessage' | 'on' | 'off'>;

interface RpcRequest { rpc: 'req'; id: number; method: string; args?: unknown }
export interface RpcResponse { rpc: 'res'; id: number; ok: boolean; value?: unknown; error?: { code: string; message: string; statusCode?: number } }

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

export type RpcHandlers = Record<string, (args: any) => Promise<unknown>>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Answer one message if it is an RPC request (returns false for any other message).
 * `reply` gets the response to post; the caller decides where it goes (or that it
 * goes nowhere: the asking worker died meanwhile).
 */
export function answerRpc(msg: unknown, handlers: RpcHandlers, reply: (res: RpcResponse) => void): boolean {
  const req = msg as RpcRequest | null;
  if (req?.rpc !== 'req') return false;
  const h = handlers[req.method];
  const send = (r: Omit<RpcResponse, 'rpc' | 'id'>) => reply({ rpc: 'res', id: req.id, ...r });
  if (!h) { send({ ok: false, error: { code: 'INSPECTOR_RPC_UNKNOWN', message: req.method } }); return true; }
  h(req.args).then((value) => send({ ok: true, value }),
    (err: Error & { code?: string; statusCode?: number }) => send({ ok: false, error: { code: err.code ?? 'INSPECTOR_UNEXPECTED', message: err.message, statusCode: err.statusCode } }));
  return true;
}

/** Answer requests arriving on `port` with the given handlers. */
export function serveRpc(port: Port, handlers: RpcHandlers): void {
  port.on('message', (msg: unknown) => { answerRpc(msg, handlers, (res) => port.postMessage(res)); });
}
