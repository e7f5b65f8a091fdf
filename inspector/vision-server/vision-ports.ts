/**
 * The main-thread side of the vision server: the narrow ports it gets from the station and
 * the RPC handlers the server worker calls through them. The worker never sees the Station:
 * only a switch (inspect or reject every part), the model lifecycle's list / validate /
 * promote (recipes are registry packages), and the station's fault for the Error state.
 */
import type { InspectionSwitch } from '../station/part-loop.js';
import type { ModelLifecycle } from '../registry/lifecycle.js';
import { ModelValidationFailedError } from '../registry/errors.js';
import { VISION_RPC, type RecipeRef } from './vision-protocol.js';

/** What the recipes need of the model registry (registry/lifecycle.ts). */
export type RecipePort = Pick<ModelLifecycle, 'list' | 'validate' | 'promote'>;

export interface VisionPorts {
  inspection: InspectionSwitch;
  recipes: RecipePort;
  /** the station fault that puts the VisionStateMachine in Error (null: none) */
  fault(): string | null;
}

/** A recipe as the worker lists it. */
export interface RecipeItem extends RecipeRef { live: boolean; problem?: string }

type Handler = (args: any) => Promise<unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function visionRpcHandlers(ports: VisionPorts): Record<string, Handler> {
  const ref = (a: RecipeRef): RecipeRef => ({ name: String(a.name), version: String(a.version) });
  return {
    [VISION_RPC.setInspecting]: async (a: { on: boolean }) => {
      ports.inspection.setInspecting(a.on === true);
      return { inspecting: ports.inspection.inspecting };
    },
    [VISION_RPC.recipes]: async (): Promise<RecipeItem[]> => (await ports.recipes.list()).map((m) => ({
      name: m.name, version: m.version, live: m.live, ...((m as { problem?: string }).problem ? { problem: (m as { problem?: string }).problem } : {}),
    })),
    // PrepareRecipe = the validation gate, nothing changes on the line; a refusal is a coded error
    [VISION_RPC.prepare]: async (a: RecipeRef) => {
      const r = await ports.recipes.validate(ref(a));
      if (!r.ok) throw new ModelValidationFailedError(`${a.name}@${a.version}`, r.reasons.join('; '));
      return { ok: true, signer: r.signer ?? null };
    },
    // activation = promotion (the gate again, then the swap between two parts)
    [VISION_RPC.activate]: async (a: RecipeRef & { actor: string }) => {
      const r = await ports.recipes.promote(ref(a), a.actor);
      return { ok: r.ok };
    },
  };
}
