/**
 * The station's OPC 40100-1 (Machine Vision) nodes in a node-opcua address space that has
 * the Machine Vision nodeset loaded: one `VisionSystem` (VisionSystemType) under Objects with
 * its VisionStateMachine (+ AutomaticModeStateMachine), ResultManagement and RecipeManagement.
 *
 * The nodeset brings types only. What is written here keeps the state variables true
 * (CurrentState with its Id and Number, LastTransition with its Id, Number and
 * TransitionTime) for whatever state vision-state-machine.ts decides, and raises the
 * ResultReadyEvent. The methods are bound by vision-methods.ts.
 */
import {
  DataType, LocalizedText, NodeId, Variant,
  type AddressSpace, type UAObject, type UAObjectType, type UAVariable,
} from 'node-opcua';
import type { AutoState, TopState, VisionState } from './vision-state-machine.js';

export const MV_NAMESPACE_URI = 'http://opcfoundation.org/UA/MachineVision';

export interface VisionNodes {
  ns: number;
  system: UAObject;
  stateMachine: UAObject;
  automatic: UAObject;
  resultManagement: UAObject;
  recipeManagement: UAObject;
}

/** What one ResultReadyEvent carries (result-tail.ts makes it from a results row). */
export interface ResultEventData {
  resultId: string;
  partId: string;
  jobId: string;
  /** ResultStateDataType: 1 Completed, 3 Aborted, 4 Failed */
  resultState: number;
  isSimulated: boolean;
  creationTime: Date;
  /** ProcessingTimes: capture → verdict; durations in ms (NaN: unknown, left out) */
  startTime: Date;
  endTime: Date;
  processingMs: number;
  /** the model package that judged the part: the recipe (`name@version`) */
  recipe: string;
  configuration: string;
  /** ResultContent: [pass, result code, score, reason] (the verdict; ResultState is the processing state) */
  pass: boolean;
  code: number;
  score: number;
  reason: string;
}

/** Instantiate the VisionSystem under Objects, with the optional parts the station implements. */
export function buildVisionSystem(addressSpace: AddressSpace): VisionNodes {
  const ns = addressSpace.getNamespaceIndex(MV_NAMESPACE_URI);
  if (ns < 0) throw new Error(`the Machine Vision nodeset (${MV_NAMESPACE_URI}) is not loaded`);
  const type = addressSpace.findObjectType('VisionSystemType', ns);
  if (!type) throw new Error('VisionSystemType missing from the Machine Vision nodeset');
  const system = type.instantiate({
    browseName: { name: 'VisionSystem', namespaceIndex: addressSpace.getOwnNamespace().index },
    organizedBy: addressSpace.rootFolder.objects,
    eventNotifier: 1, // SubscribeToEvents: the ResultReadyEvents are raised here
    optionals: [
      'ResultManagement', 'RecipeManagement',
      'VisionStateMachine.AutomaticModeStateMachine',
      'VisionStateMachine.AutomaticModeStateMachine.LastTransition',
      'VisionStateMachine.AutomaticModeStateMachine.CurrentState.Number',
      'VisionStateMachine.AutomaticModeStateMachine.LastTransition.Number',
      'VisionStateMachine.AutomaticModeStateMachine.LastTransition.TransitionTime',
      'VisionStateMachine.SelectModeAutomatic',
      'VisionStateMachine.LastTransition',
      'VisionStateMachine.CurrentState.Number',
      'VisionStateMachine.LastTransition.Number',
      'VisionStateMachine.LastTransition.TransitionTime',
    ],
  }) as UAObject;
  // events raised on the VisionSystem also reach clients subscribed to the Server object
  addressSpace.rootFolder.objects.server.addReference({ referenceType: 'HasNotifier', nodeId: system.nodeId });
  const child = (parent: UAObject, name: string): UAObject => {
    const c = parent.getComponentByName(name, ns) as UAObject | null;
    if (!c) throw new Error(`${parent.browseName.toString()} has no ${name}`);
    return c;
  };
  const stateMachine = child(system, 'VisionStateMachine');
  return {
    ns, system, stateMachine, automatic: child(stateMachine, 'AutomaticModeStateMachine'),
    resultManagement: child(system, 'ResultManagement'), recipeManagement: child(system, 'RecipeManagement'),
  };
}

/** A state or transition of a state-machine type: its node and its number. */
function numbered(type: UAObjectType, name: string, ns: number, prop: 'StateNumber' | 'TransitionNumber'): { nodeId: NodeId; number: number } {
  const node = type.getComponentByName(name, ns) as UAObject | null;
  if (!node) throw new Error(`${type.browseName.toString()} has no ${name}`);
  const n = node.getPropertyByName(prop)?.readValue().value.value as number | undefined;
  return { nodeId: node.nodeId, number: n ?? 0 };
}

function setVar(v: UAVariable | null | undefined, dataType: DataType, value: unknown): void {
  v?.setValueFromSource(new Variant({ dataType, value }));
}

/** Writes CurrentState / LastTransition of one state machine instance (top level or automatic mode). */
class StateWriter {
  private readonly type: UAObjectType;
  constructor(private readonly sm: UAObject, private readonly ns: number) {
    this.type = sm.typeDefinitionObj;
  }

  state(name: TopState | AutoState | null): void {
    const cs = this.sm.getComponentByName('CurrentState') as UAVariable;
    if (name === null) { // a sub-machine whose parent is not in Operational has no current state
      setVar(cs, DataType.LocalizedText, new LocalizedText({ text: '' }));
      setVar(cs.getPropertyByName('Id'), DataType.NodeId, NodeId.nullNodeId);
      setVar(cs.getPropertyByName('Number'), DataType.UInt32, 0);
      return;
    }
    const s = numbered(this.type, name, this.ns, 'StateNumber');
    setVar(cs, DataType.LocalizedText, new LocalizedText({ text: name }));
    setVar(cs.getPropertyByName('Id'), DataType.NodeId, s.nodeId);
    setVar(cs.getPropertyByName('Number'), DataType.UInt32, s.number);
  }

  transition(name: string, at: Date): void {
    const t = numbered(this.type, name, this.ns, 'TransitionNumber');
    const lt = this.sm.getComponentByName('LastTransition') as UAVariable | null;
    if (!lt) return;
    setVar(lt, DataType.LocalizedText, new LocalizedText({ text: name }));
    setVar(lt.getPropertyByName('Id'), DataType.NodeId, t.nodeId);
    setVar(lt.getPropertyByName('Number'), DataType.UInt32, t.number);
    setVar(lt.getPropertyByName('TransitionTime'), DataType.DateTime, at);
  }
}

/** Keeps the two state machines' variables equal to the station's VisionState. */
export class VisionStateNodes {
  private readonly top: StateWriter;
  private readonly auto: StateWriter;
  constructor(nodes: VisionNodes) {
    this.top = new StateWriter(nodes.stateMachine, nodes.ns);
    this.auto = new StateWriter(nodes.automatic, nodes.ns);
  }

  show(s: VisionState, step?: { topTransition: string | null; autoTransitions: string[] }): void {
    const at = new Date();
    if (step?.topTransition) this.top.transition(step.topTransition, at);
    for (const t of step?.autoTransitions ?? []) this.auto.transition(t, at);
    this.top.state(s.top);
    this.auto.state(s.top === 'Operational' ? s.auto : null);
  }
}

/** Raises one ResultReadyEvent per result on the VisionSystem (source: ResultManagement). */
export class ResultEvents {
  private readonly eventType;
  private readonly dt: Record<'ResultIdDataType' | 'PartIdDataType' | 'JobIdDataType' | 'RecipeIdInternalDataType' | 'ConfigurationIdDataType' | 'ProcessingTimesDataType', NodeId>;

  constructor(private readonly addressSpace: AddressSpace, private readonly nodes: VisionNodes) {
    const t = addressSpace.findEventType('ResultReadyEventType', nodes.ns);
    if (!t) throw new Error('ResultReadyEventType missing from the Machine Vision nodeset');
    this.eventType = t;
    const find = (name: string): NodeId => {
      const d = addressSpace.findDataType(name, nodes.ns);
      if (!d) throw new Error(`${name} missing from the Machine Vision nodeset`);
      return d.nodeId;
    };
    this.dt = {
      ResultIdDataType: find('ResultIdDataType'), PartIdDataType: find('PartIdDataType'), JobIdDataType: find('JobIdDataType'),
      RecipeIdInternalDataType: find('RecipeIdInternalDataType'), ConfigurationIdDataType: find('ConfigurationIdDataType'),
      ProcessingTimesDataType: find('ProcessingTimesDataType'),
    };
  }

  private ext(dt: keyof ResultEvents['dt'], value: Record<string, unknown>): Variant {
    return new Variant({ dataType: DataType.ExtensionObject, value: this.addressSpace.constructExtensionObject(this.dt[dt], value) });
  }

  raise(e: ResultEventData): void {
    const times: Record<string, unknown> = { startTime: e.startTime, endTime: e.endTime };
    if (Number.isFinite(e.processingMs)) times.processingDuration = e.processingMs;
    const [name, version] = e.recipe.split('@');
    this.nodes.system.raiseEvent(this.eventType, {
      sourceNode: { dataType: DataType.NodeId, value: this.nodes.resultManagement.nodeId },
      sourceName: { dataType: DataType.String, value: 'ResultManagement' },
      message: { dataType: DataType.LocalizedText, value: { text: `result ${e.resultId} of part ${e.partId}` } },
      severity: { dataType: DataType.UInt16, value: e.pass ? 100 : 300 },
      resultId: this.ext('ResultIdDataType', { id: e.resultId }),
      partId: this.ext('PartIdDataType', { id: e.partId }),
      jobId: this.ext('JobIdDataType', { id: e.jobId }),
      internalRecipeId: this.ext('RecipeIdInternalDataType', { id: e.recipe, version: version ?? '', description: { text: name ?? '' } }),
      internalConfigurationId: this.ext('ConfigurationIdDataType', { id: e.configuration }),
      resultState: { dataType: DataType.Int32, value: e.resultState },
      isPartial: { dataType: DataType.Boolean, value: false },
      isSimulated: { dataType: DataType.Boolean, value: e.isSimulated },
      creationTime: { dataType: DataType.DateTime, value: e.creationTime },
      processingTimes: this.ext('ProcessingTimesDataType', times),
      resultContent: {
        dataType: DataType.Variant, arrayType: 1 /* Array */,
        value: [
          new Variant({ dataType: DataType.Boolean, value: e.pass }),
          new Variant({ dataType: DataType.UInt16, value: e.code }),
          new Variant({ dataType: DataType.Double, value: Number.isFinite(e.score) ? e.score : 1 }),
          new Variant({ dataType: DataType.String, value: e.reason }),
        ],
      },
    });
  }
}
