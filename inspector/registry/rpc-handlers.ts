/**
 * The station-side RPC methods of the model registry, answered on the main
 * thread for the HTTP server worker (routes/models.ts). Each returns plain,
 * structured-clonable data; coded errors travel back with their code and
 * status (see server/rpc.ts).
 */
import type { ModelLifecycle } from './lifecycle.js';
import type { ModelRef } from './registry-state.js';

type Handler = (args: any) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** RPC method names (routes and tests use these). */
export const MODEL_RPC = {
  list: 'models.list', show: 'models.show', staging: 'models.staging', push: 'models.push', shadow: 'models.shadow',
  unshadow: 'models.unshadow', promote: 'models.promote', rollback: 'models.rollback', delete: 'models.delete',
  report: 'models.report', history: 'models.history',
} as const;

/** Model operations take seconds (sessions, warm-up, the golden set): callers use this RPC timeout. */
export const MODEL_RPC_TIMEOUT_MS = 180_000;

export function modelRpcHandlers(lc: ModelLifecycle): Record<string, Handler> {
  const ref = (a: { name: string; version: string }): ModelRef => ({ name: a.name, version: a.version });
  return {
    [MODEL_RPC.list]: async () => ({ models: await lc.list(), live: lc.state.live, shadow: lc.state.shadow, previous: [...lc.state.previous] }),
    [MODEL_RPC.show]: async (a: ModelRef) => lc.show(ref(a)),
    [MODEL_RPC.staging]: async () => ({ dir: await lc.registry.stagingDir() }),
    [MODEL_RPC.push]: async (a: { stagingDir: string; actor: string }) => lc.push(a.stagingDir, a.actor),
    [MODEL_RPC.shadow]: async (a: ModelRef & { actor: string }) => lc.shadow(ref(a), a.actor),
    [MODEL_RPC.unshadow]: async (a: { actor: string }) => { await lc.unshadow(a.actor); return { shadow: null }; },
    [MODEL_RPC.promote]: async (a: ModelRef & { actor: string }) => {
      try {
        return await lc.promote(ref(a), a.actor);
      } catch (err) {
        // the refusal's report travels in the message (RPC errors carry code + message only)
        const report = (err as { report?: unknown }).report;
        if (report) (err as Error).message = `${(err as Error).message}\n${JSON.stringify(report)}`;
        throw err;
      }
    },
    [MODEL_RPC.rollback]: async (a: { actor: string }) => lc.rollback(a.actor),
    [MODEL_RPC.delete]: async (a: ModelRef & { actor: string }) => { await lc.remove(ref(a), a.actor); return { deleted: ref(a) }; },
    [MODEL_RPC.report]: async (a: Partial<ModelRef> | undefined) => lc.report(a?.name && a.version ? ref(a as ModelRef) : undefined),
    [MODEL_RPC.history]: async () => [...lc.history()],
  };
}
