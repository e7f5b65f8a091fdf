/**
 * The behaviour behind the VisionSystem's methods, in the server worker: the state machine
 * methods (SelectModeAutomatic, StartContinuous, Stop, Abort, Halt, Reset) and the recipe
 * methods (PrepareRecipe, UnprepareRecipe, GetRecipeListFiltered, and the station's own
 * ActivateRecipe). A method first asks the main thread (RPC) to do what it means on the
 * line (switch inspection, validate or promote a package) and changes the state only once
 * that is done: the state the clients read is the state the line is in.
 *
 * Calls are taken one at a time (a Stop arriving during a StartContinuous waits for it).
 */
import {
  DataType, StatusCodes, Variant,
  type AddressSpace, type CallMethodResultOptions, type ISessionContext, type UAMethod, type UAObject,
} from 'node-opcua';
import { methodStep, faultStep, startStep, PREOPERATIONAL, type Step, type VisionMethod, type VisionState } from './vision-state-machine.js';
import { VisionStateNodes, type VisionNodes } from './vision-address-space.js';
import { VISION_RPC, VisionError, parseRecipeId, recipeKey, visionErrorOf, type RecipeRef } from './vision-protocol.js';
import type { RecipeItem } from './vision-ports.js';

export interface VisionRpc { call<T>(method: string, args?: unknown, timeoutMs?: number): Promise<T> }

/** Model operations take seconds (sessions, golden set): the recipe RPCs wait this long. */
const RECIPE_RPC_TIMEOUT_MS = 180_000;

const int32 = (v: number): Variant => new Variant({ dataType: DataType.Int32, value: v });
// node-opcua tells a promise-returning method from a callback one by its arity: every bound function takes (args, context)
const good = (...out: Variant[]): CallMethodResultOptions => ({ statusCode: StatusCodes.Good, outputArguments: out });

export class VisionController {
  state: VisionState = PREOPERATIONAL;
  /** the state to go back to when a fault clears */
  private resume: VisionState | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly view: VisionStateNodes;
  /** recipes that passed PrepareRecipe (the live one counts as prepared) */
  readonly prepared = new Set<string>();
  private jobs = 0;
  jobId: string;

  constructor(
    private readonly addressSpace: AddressSpace,
    private readonly nodes: VisionNodes,
    private readonly rpc: VisionRpc,
    private readonly runId: string,
    private readonly onState: (s: VisionState, transition: string | null) => void,
  ) {
    this.view = new VisionStateNodes(nodes);
    this.jobId = `${runId}/0`;
  }

  /** The first state: a respawned worker resumes the last one, a fresh station starts automatically. */
  begin(inspecting: boolean, fault: string | null, resume: VisionState | null): void {
    if (resume) {
      this.state = resume;
      this.view.show(resume);
    } else {
      this.view.show(this.state);
      const s = startStep(inspecting);
      if (s) this.apply(s);
    }
    if (fault) this.onFault(fault);
  }

  /** The station's fault changed (main thread): Error and back by the automatic transitions. */
  onFault(fault: string | null): void {
    void this.serial(async () => {
      const before = this.state;
      const s = faultStep(this.state, fault !== null, this.resume);
      if (!s) return;
      if (fault !== null) this.resume = before;
      if (s.inspecting !== null) await this.rpc.call(VISION_RPC.setInspecting, { on: s.inspecting });
      this.apply(s);
    }).catch(() => undefined); // the main thread did not answer: the state stays as it was
  }

  private apply(step: Step): void {
    if (step.to.auto === 'ContinuousExecution' && this.state.auto !== 'ContinuousExecution') this.jobId = `${this.runId}/${++this.jobs}`;
    this.state = step.to;
    this.view.show(step.to, step);
    this.onState(step.to, step.autoTransitions.at(-1) ?? step.topTransition);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => undefined).then(fn);
    this.chain = run;
    return run;
  }

  /** One state machine method: BadInvalidState where the state does not allow it. */
  private stateMethod(m: VisionMethod, before?: (args: Variant[], ctx: ISessionContext) => Promise<number>) {
    return (args: Variant[], ctx: ISessionContext): Promise<CallMethodResultOptions> => this.serial(async () => {
      const step = methodStep(this.state, m);
      if (!step) return { statusCode: StatusCodes.BadInvalidState };
      if (before) {
        const err = await before(args, ctx);
        if (err !== VisionError.OK) return m === 'StartContinuous' ? good(this.jobIdVariant(''), int32(err)) : good(int32(err));
      }
      if (step.inspecting !== null) await this.rpc.call(VISION_RPC.setInspecting, { on: step.inspecting });
      this.apply(step);
      return m === 'StartContinuous' ? good(this.jobIdVariant(this.jobId), int32(VisionError.OK)) : good(int32(VisionError.OK));
    });
  }

  private jobIdVariant(id: string): Variant {
    const dt = this.addressSpace.findDataType('JobIdDataType', this.nodes.ns)!;
    return new Variant({ dataType: DataType.ExtensionObject, value: this.addressSpace.constructExtensionObject(dt.nodeId, { id }) });
  }

  private recipeIdVariant(id: string, version: string, description: string): Variant {
    const dt = this.addressSpace.findDataType('RecipeIdInternalDataType', this.nodes.ns)!;
    return new Variant({ dataType: DataType.ExtensionObject,
      value: this.addressSpace.constructExtensionObject(dt.nodeId, { id, version, description: { text: description } }) });
  }

  /** Who asked (recorded in the registry's history as the actor). */
  private actor(ctx: ISessionContext): string {
    const token = (ctx.session as { userIdentityToken?: { userName?: string } } | undefined)?.userIdentityToken;
    return `opcua:${token?.userName ?? 'anonymous'}`;
  }

  /** A recipe id argument (RecipeIdExternal / RecipeIdInternal): { Id, Version }. */
  private recipeArg(v: Variant | undefined): RecipeRef | null {
    const o = v?.value as { id?: string; version?: string | null } | null | undefined;
    return o?.id ? parseRecipeId(o.id, o.version) : null;
  }

  private async recipes(): Promise<RecipeItem[]> {
    const list = await this.rpc.call<RecipeItem[]>(VISION_RPC.recipes);
    for (const r of list) if (r.live) this.prepared.add(recipeKey(r));
    return list;
  }

  /** Promote a prepared recipe (the live one: nothing to do). */
  private async activate(ref: RecipeRef, ctx: ISessionContext): Promise<{ error: number; detail: string }> {
    const key = recipeKey(ref);
    const live = (await this.recipes()).find((r) => r.live);
    if (live && recipeKey(live) === key) return { error: VisionError.OK, detail: 'live' };
    if (!this.prepared.has(key)) return { error: VisionError.NOT_PREPARED, detail: `${key} is not prepared (PrepareRecipe first)` };
    try {
      await this.rpc.call(VISION_RPC.activate, { ...ref, actor: this.actor(ctx) }, RECIPE_RPC_TIMEOUT_MS);
      return { error: VisionError.OK, detail: 'promoted' };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { error: visionErrorOf(e.code), detail: `${e.code ?? 'ERROR'}: ${e.message}` };
    }
  }

  bind(): void {
    const method = (parent: UAObject, name: string): UAMethod => {
      const m = parent.getMethodByName(name, this.nodes.ns);
      if (!m) throw new Error(`${parent.browseName.toString()} has no method ${name}`);
      return m;
    };
    const { stateMachine: sm, automatic: auto, recipeManagement: rm } = this.nodes;
    method(sm, 'SelectModeAutomatic').bindMethod(this.stateMethod('SelectModeAutomatic'));
    method(sm, 'Halt').bindMethod(this.stateMethod('Halt'));
    method(sm, 'Reset').bindMethod(this.stateMethod('Reset'));
    method(auto, 'Stop').bindMethod(this.stateMethod('Stop'));
    method(auto, 'Abort').bindMethod(this.stateMethod('Abort'));
    // StartContinuous(MeasId, PartId, RecipeId, ProductId, Parameters): a RecipeId other than the live model's is activated first
    method(auto, 'StartContinuous').bindMethod(this.stateMethod('StartContinuous', async (args, ctx) => {
      const ref = this.recipeArg(args[2]);
      return ref ? (await this.activate(ref, ctx)).error : VisionError.OK;
    }));

    // PrepareRecipe(ExternalId, InternalIdIn) -> (InternalIdOut, IsCompleted, Error): the validation gate
    method(rm, 'PrepareRecipe').bindMethod(async (args: Variant[], _ctx: ISessionContext): Promise<CallMethodResultOptions> => {
      const ref = this.recipeArg(args[0]) ?? this.recipeArg(args[1]);
      if (!ref) return good(this.recipeIdVariant('', '', 'INSPECTOR_MODEL_NOT_FOUND: a recipe id is "<name>@<version>"'), new Variant({ dataType: DataType.Boolean, value: false }), int32(VisionError.NOT_FOUND));
      const key = recipeKey(ref);
      try {
        await this.rpc.call(VISION_RPC.prepare, ref, RECIPE_RPC_TIMEOUT_MS);
        this.prepared.add(key);
        return good(this.recipeIdVariant(key, ref.version, 'prepared: the validation gate passed'), new Variant({ dataType: DataType.Boolean, value: true }), int32(VisionError.OK));
      } catch (err) {
        const e = err as Error & { code?: string };
        this.prepared.delete(key);
        return good(this.recipeIdVariant(key, ref.version, `${e.code ?? 'ERROR'}: ${e.message}`), new Variant({ dataType: DataType.Boolean, value: false }), int32(visionErrorOf(e.code)));
      }
    });
    // UnprepareRecipe(ExternalId, InternalIdIn) -> (InternalIdOut, Error)
    method(rm, 'UnprepareRecipe').bindMethod(async (args: Variant[], _ctx: ISessionContext): Promise<CallMethodResultOptions> => {
      const ref = this.recipeArg(args[0]) ?? this.recipeArg(args[1]);
      if (!ref) return good(this.recipeIdVariant('', '', 'no recipe id'), int32(VisionError.NOT_FOUND));
      const had = this.prepared.delete(recipeKey(ref));
      return good(this.recipeIdVariant(recipeKey(ref), ref.version, had ? 'unprepared' : 'was not prepared'), int32(had ? VisionError.OK : VisionError.NOT_PREPARED));
    });
    // GetRecipeListFiltered(ExternalId, ProductId, IsPrepared, MaxResults, StartIndex, Timeout)
    //   -> (IsComplete, ResultCount, RecipeHandle, RecipeList, Error)
    method(rm, 'GetRecipeListFiltered').bindMethod(async (args: Variant[], _ctx: ISessionContext): Promise<CallMethodResultOptions> => {
      const want = this.recipeArg(args[0]);
      const prepared = Number(args[2]?.value ?? 2); // TriStateBooleanDataType: 0 false, 1 true, 2 don't care
      const max = Number(args[3]?.value ?? 0) || Number.MAX_SAFE_INTEGER;
      const start = Number(args[4]?.value ?? 0);
      let list = await this.recipes();
      if (want) list = list.filter((r) => recipeKey(r) === recipeKey(want));
      if (prepared !== 2) list = list.filter((r) => this.prepared.has(recipeKey(r)) === (prepared === 1));
      const page = list.slice(start, start + max);
      const dt = this.addressSpace.findDataType('RecipeIdInternalDataType', this.nodes.ns)!;
      return good(
        new Variant({ dataType: DataType.Boolean, value: start + page.length >= list.length }),
        new Variant({ dataType: DataType.UInt32, value: page.length }),
        new Variant({ dataType: DataType.UInt32, value: 0 }),
        new Variant({ dataType: DataType.ExtensionObject, arrayType: 1,
          value: page.map((r) => this.addressSpace.constructExtensionObject(dt.nodeId, { id: recipeKey(r), version: r.version, description: { text: r.live ? 'live' : '' } })) }),
        int32(VisionError.OK),
      );
    });
  }

  /** The station's own method: activate (promote) a prepared recipe. Added to RecipeManagement in the station's namespace. */
  addActivateRecipe(): void {
    const ns = this.addressSpace.getOwnNamespace();
    const dt = this.addressSpace.findDataType('RecipeIdExternalDataType', this.nodes.ns)!;
    const m = ns.addMethod(this.nodes.recipeManagement, {
      browseName: 'ActivateRecipe',
      inputArguments: [{ name: 'ExternalId', dataType: dt.nodeId, description: { text: '"<name>@<version>" (or Id = name, Version = version) of a prepared recipe' } }],
      outputArguments: [
        { name: 'Detail', dataType: DataType.String, description: { text: 'what was done, or the coded refusal' } },
        { name: 'Error', dataType: DataType.Int32, description: { text: '0: active; else a VisionError code' } },
      ],
    });
    m.bindMethod((args: Variant[], ctx: ISessionContext): Promise<CallMethodResultOptions> => this.serial(async () => {
      const ref = this.recipeArg(args[0]);
      if (!ref) return good(new Variant({ dataType: DataType.String, value: 'INSPECTOR_MODEL_NOT_FOUND: a recipe id is "<name>@<version>"' }), int32(VisionError.NOT_FOUND));
      const r = await this.activate(ref, ctx);
      return good(new Variant({ dataType: DataType.String, value: r.detail }), int32(r.error));
    }));
  }
}
