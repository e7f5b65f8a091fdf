/**
 * The simulated PLC's OPC UA address space (plc-simulator.ts): the variables of
 * plc-contract.ts bound to the simulator's state, and the latch that turns a
 * result WriteRequest into a gate decision. Separate from the simulator so the
 * node-opcua side of the PLC reads in one place; the PLC logic itself stays in
 * gate-windows.ts and never sees a Variant.
 *
 * Results are latched per WriteRequest by a hook on `server.engine.write`, which
 * sees the whole request before node-opcua applies it variable by variable:
 * node-opcua keeps the order inside one request but interleaves pipelined
 * requests (measured: 20 concurrent 3-value writes arrive as A0..A19, B0..B19,
 * C0..C19), so a per-variable `set` hook cannot know which Pass belongs to which
 * PartId.
 */
import {
  AttributeIds, DataType, StatusCodes, Variant, VariantArrayType, type ISessionContext, type OPCUAServer, type UAObject,
  type WriteValue,
} from 'node-opcua';
import {
  OUTCOME_LOG_TAG, PLC_NAMESPACE_URI, plcTags, stationTags, type PlcDataType, type PlcTagKey, type StationTagKey,
} from './plc-contract.js';
import type { GateWindows } from './gate-windows.js';
import type { LineTiming } from './line-timing.js';

const OPC_TYPE: Record<PlcDataType, DataType> = {
  Boolean: DataType.Boolean, UInt16: DataType.UInt16, UInt32: DataType.UInt32, Float: DataType.Float,
};

/** What the address space reads and writes of the simulator: its live state, never a copy. */
export interface PlcSimState {
  /** last values written to the station's variables (read-back only, never latched) */
  readonly registers: Readonly<Record<StationTagKey, boolean | number>>;
  /** a station variable was written (a value of the right type): keep it, watch the heartbeat */
  stationWrote(key: StationTagKey, v: boolean | number): void;
  readonly gates: GateWindows;
  readonly gateWindowMs: number;
  stationAlive(): boolean;
  stationReady(): boolean;
}

export function buildAddressSpace(server: OPCUAServer, state: PlcSimState): void {
  const addressSpace = server.engine.addressSpace;
  if (!addressSpace) throw new Error('OPC UA address space missing after initialize()');
  const ns = addressSpace.getOwnNamespace();
  if (ns.namespaceUri !== PLC_NAMESPACE_URI || ns.index !== 1) {
    throw new Error(`PLC namespace is ${ns.namespaceUri} at index ${ns.index}, expected ${PLC_NAMESPACE_URI} at 1`);
  }
  const folders = new Map<string, UAObject>();
  const folderOf = (path: string): UAObject => {
    const existing = folders.get(path);
    if (existing) return existing;
    const dot = path.lastIndexOf('.');
    const parent = dot < 0 ? addressSpace.rootFolder.objects : folderOf(path.slice(0, dot));
    const f = ns.addFolder(parent, { browseName: path.slice(dot + 1), nodeId: `s=${path}` });
    folders.set(path, f);
    return f;
  };
  const add = (id: string, dataType: PlcDataType, writable: boolean, get: () => boolean | number,
    set?: (v: boolean | number) => void): void => {
    const dot = id.lastIndexOf('.');
    const dt = OPC_TYPE[dataType];
    ns.addVariable({
      organizedBy: folderOf(id.slice(0, dot)),
      browseName: id.slice(dot + 1),
      nodeId: `s=${id}`,
      dataType,
      accessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
      userAccessLevel: writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead',
      minimumSamplingInterval: 100,
      value: {
        get: () => new Variant({ dataType: dt, value: get() }),
        set: set
          ? (variant: Variant) => {
            if (variant.dataType !== dt || variant.arrayType !== VariantArrayType.Scalar) return StatusCodes.BadTypeMismatch;
            set(variant.value as boolean | number);
            return StatusCodes.Good;
          }
          : null,
      },
    });
  };
  for (const [key, tag] of Object.entries(stationTags) as [StationTagKey, typeof stationTags[StationTagKey]][]) {
    add(tag.id, tag.dataType, true, () => state.registers[key], (v) => state.stationWrote(key, v));
  }
  const gates = state.gates;
  const c = gates.counters;
  for (const [key, tag] of Object.entries(plcTags) as [PlcTagKey, typeof plcTags[PlcTagKey]][]) {
    const get = key === 'StationAlive' ? () => state.stationAlive()
      : key === 'StationReady' ? () => state.stationReady()
      : key === 'GateWindowMs' ? () => state.gateWindowMs
        : key === 'Epoch' ? () => gates.epoch
          : key === 'LastPartId' ? () => gates.lastPartId
            : key === 'OutcomeCount' ? () => gates.outcomeCount
              : () => c[key];
    add(tag.id, tag.dataType, false, get);
  }
  const logId = OUTCOME_LOG_TAG.id;
  ns.addVariable({
    organizedBy: folderOf(logId.slice(0, logId.lastIndexOf('.'))),
    browseName: logId.slice(logId.lastIndexOf('.') + 1),
    nodeId: `s=${logId}`,
    dataType: 'UInt32',
    valueRank: 1,
    accessLevel: 'CurrentRead',
    userAccessLevel: 'CurrentRead',
    minimumSamplingInterval: 100,
    value: { get: () => new Variant({ dataType: DataType.UInt32, arrayType: VariantArrayType.Array, value: gates.outcomeLog() }) },
  });
}

/**
 * Latch results per WriteRequest, in request order, before node-opcua applies it.
 * `onResultRequest` is called for each request that carried a result strobe.
 */
export function hookWrites(server: OPCUAServer, gates: GateWindows, timing: LineTiming,
  onResultRequest: (context: ISessionContext) => void): void {
  const engine = server.engine;
  const original = engine.write.bind(engine);
  const roles = new Map<string, StationTagKey>();
  for (const [key, tag] of Object.entries(stationTags) as [StationTagKey, typeof stationTags[StationTagKey]][]) {
    if (key !== 'heartbeat' && key !== 'ready') roles.set(tag.id, key);
  }
  engine.write = (context, nodesToWrite) => {
    if (scanRequest(nodesToWrite, roles, gates, timing)) onResultRequest(context);
    return original(context, nodesToWrite);
  };
}

/** true when the request carried a result strobe */
function scanRequest(nodesToWrite: WriteValue[], roles: Map<string, StationTagKey>, gates: GateWindows,
  timing: LineTiming): boolean {
  let strobes = 0;
  let pass: boolean | null = null;
  let code: number | null = null;
  let score: number | null = null;
  let epoch: number | null = null;
  let bad = false;
  let latchedNs = 0n; // one clock read per request that carries a strobe: the instant it latched
  for (const wv of nodesToWrite) {
    const id = wv.nodeId;
    if (id.namespace !== 1 || typeof id.value !== 'string' || wv.attributeId !== AttributeIds.Value) continue;
    const role = roles.get(id.value);
    if (!role) continue;
    const v = wv.value?.value;
    const ok = v !== undefined && v !== null && v.arrayType === VariantArrayType.Scalar
      && v.dataType === OPC_TYPE[stationTags[role].dataType];
    switch (role) {
      case 'pass': if (ok) pass = v.value as boolean; else bad = true; break;
      case 'code': if (ok) code = v.value as number; else bad = true; break;
      case 'score': if (ok) score = v.value as number; else bad = true; break;
      case 'epoch': if (ok) epoch = v.value as number; else bad = true; break;
      case 'partId':
        if (!ok) break; // node-opcua answers BadTypeMismatch; no strobe
        strobes++;
        if (latchedNs === 0n) latchedNs = process.hrtime.bigint();
        switch (gates.onResult(v.value as number, { pass, code, score, epoch, valid: !bad && pass !== null && code !== null && score !== null })) {
          case 'in_time': timing.resultLatched(v.value as number, latchedNs, false); break;
          case 'late': timing.resultLatched(v.value as number, latchedNs, true); break;
          default: break;
        }
        pass = code = score = epoch = null; bad = false; // a second result in the same request needs its own values
        break;
      default: break;
    }
  }
  return strobes > 0;
}
