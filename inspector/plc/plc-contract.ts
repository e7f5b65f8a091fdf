/**
 * The station ↔ PLC contract, declared as data.
 *
 * This module is the single place that names the OPC UA variables the station
 * writes and the PLC exposes. The simulator builds its address space from these
 * tables; the link builds its WriteValues from `PlcNodeIds`. It deliberately does
 * NOT import node-opcua (a ~1.5 s import): config code can use it for free.
 *
 * ## The result strobe convention
 *
 * For every part the station sends ONE WriteRequest with five WriteValues, in
 * this order (see `RESULT_WRITE_ORDER`):
 *
 *   1. Inspection.Result.Pass    Boolean
 *   2. Inspection.Result.Code    UInt16   (0 is the only code that means accept)
 *   3. Inspection.Result.Score   Float
 *   4. Inspection.Result.Epoch   UInt32   (the PLC's Line.Epoch the part id belongs to)
 *   5. Inspection.Result.PartId  UInt32   ← the strobe, written LAST
 *
 * PartId is the strobe: when the PLC sees PartId written it latches the Pass,
 * Code, Score and Epoch written before it IN THE SAME REQUEST and applies them
 * to that part's reject-gate window. Values from an earlier request are never
 * reused (a request that writes only PartId is an invalid result: the part is
 * rejected).
 *
 * ## Part identity is the line's (the Cognex "trigger ID" convention)
 *
 * The PLC numbers the parts where they are triggered: its photo-eye gives each
 * part the next PartId of the current Line.Epoch and triggers the camera with
 * that (Epoch, PartId) (trigger-telegram.ts). The station returns the pair with
 * the result. A result whose Epoch is not the PLC's current one is never applied
 * (WrongEpochResults); a result for a PartId the PLC has not triggered, or whose
 * window has been decided, is never applied to another part (OrphanResults /
 * LateResults / DuplicateResults). The PLC logs every part's outcome
 * (Plc.Outcomes.*): the station reads them back into its records.
 *
 * Why per request and not per variable: node-opcua (2.182) applies the
 * WriteValues of ONE request in order, but when the station pipelines requests
 * (a write for part n+1 sent before the answer for part n) the server
 * interleaves the variable writes of the different requests
 * (Pass(n), Pass(n+1), Code(n), Code(n+1)…). A PLC that latched "the latest
 * Pass" per variable would then mix parts up. See plc-sim-address-space.ts.
 *
 * ## Fail-safe rule
 *
 * A part is a reject until a valid accept (Pass = true AND Code = 0) for its
 * PartId arrives inside its gate window. See README.md in this folder.
 */

/** Namespace of the simulator's variables (index 1 on the simulator). */
export const PLC_NAMESPACE_URI = 'urn:inline-inspector:plc-sim';
/** Namespace index the default NodeIds use (the simulator's own namespace). */
export const PLC_DEFAULT_NAMESPACE_INDEX = 1;

/** The OPC UA built-in types this contract uses. */
export type PlcDataType = 'Boolean' | 'UInt16' | 'UInt32' | 'Float';

export interface PlcTagSpec {
  /** string identifier inside the namespace (`s=` part of the NodeId) */
  readonly id: string;
  readonly dataType: PlcDataType;
  /** 'station' = written by the station; 'plc' = read-only, owned by the PLC */
  readonly writer: 'station' | 'plc';
  readonly description: string;
}

/** Inputs of the PLC, written by the station. */
export const stationTags = {
  pass: { id: 'Inspection.Result.Pass', dataType: 'Boolean', writer: 'station',
    description: 'Verdict of the part named by the strobe: true = accept' },
  code: { id: 'Inspection.Result.Code', dataType: 'UInt16', writer: 'station',
    description: 'Result code (core/types.ts ResultCode); 0 is the only accept code' },
  score: { id: 'Inspection.Result.Score', dataType: 'Float', writer: 'station',
    description: 'Model score, informational' },
  epoch: { id: 'Inspection.Result.Epoch', dataType: 'UInt32', writer: 'station',
    description: 'Line.Epoch of the part the result belongs to; a result of another epoch is never applied' },
  partId: { id: 'Inspection.Result.PartId', dataType: 'UInt32', writer: 'station',
    description: 'Strobe: part the result belongs to (the PartId of its trigger); written last' },
  heartbeat: { id: 'Inspection.Heartbeat', dataType: 'UInt32', writer: 'station',
    description: 'Counter the station increments every heartbeat interval' },
  ready: { id: 'Station.Ready', dataType: 'Boolean', writer: 'station',
    description: 'The vision system can judge parts (model warmed, store, server, camera up); false while starting and from the start of a stop. The PLC holds the line while it is false or the heartbeat is lost' },
} as const satisfies Record<string, PlcTagSpec>;

/** Counters and status exposed by the PLC (read-only for clients). Keys = browse names. */
export const plcTags = {
  Parts: { id: 'Plc.Counters.Parts', dataType: 'UInt32', writer: 'plc',
    description: 'Parts seen by the photo-eye' },
  Accepted: { id: 'Plc.Counters.Accepted', dataType: 'UInt32', writer: 'plc',
    description: 'Parts let through by the gate (valid accept inside the window)' },
  Rejected: { id: 'Plc.Counters.Rejected', dataType: 'UInt32', writer: 'plc',
    description: 'Parts rejected, for any reason (includes RejectedTimeout)' },
  RejectedTimeout: { id: 'Plc.Counters.RejectedTimeout', dataType: 'UInt32', writer: 'plc',
    description: 'Parts rejected because no result arrived inside the window (fail-safe)' },
  LateResults: { id: 'Plc.Counters.LateResults', dataType: 'UInt32', writer: 'plc',
    description: 'Results for parts whose window had closed (ignored: the part stays rejected)' },
  SequenceMismatch: { id: 'Plc.Counters.SequenceMismatch', dataType: 'UInt32', writer: 'plc',
    description: 'Strobes whose PartId was not the previous PartId + 1' },
  DuplicateResults: { id: 'Plc.Counters.DuplicateResults', dataType: 'UInt32', writer: 'plc',
    description: 'Second and later results for one part (first wins)' },
  ResultsReceived: { id: 'Plc.Counters.ResultsReceived', dataType: 'UInt32', writer: 'plc',
    description: 'Strobes received (every PartId write)' },
  OrphanResults: { id: 'Plc.Counters.OrphanResults', dataType: 'UInt32', writer: 'plc',
    description: 'Results for a PartId the photo-eye has not triggered in this epoch (or PartId 0): never applied' },
  WrongEpochResults: { id: 'Plc.Counters.WrongEpochResults', dataType: 'UInt32', writer: 'plc',
    description: 'Results whose Epoch is not the current Line.Epoch: never applied' },
  RejectedNotReady: { id: 'Plc.Counters.RejectedNotReady', dataType: 'UInt32', writer: 'plc',
    description: 'Parts that reached the photo-eye while the vision system was not ready (Station.Ready false or heartbeat lost): rejected at once, the camera not triggered (included in Rejected)' },
  StationReady: { id: 'Plc.StationReady', dataType: 'Boolean', writer: 'plc',
    description: 'The interlock: Station.Ready is true and the heartbeat is alive (the line runs only while it is true)' },
  Epoch: { id: 'Line.Epoch', dataType: 'UInt32', writer: 'plc',
    description: 'Part-numbering epoch: a new non-zero value whenever the PLC restarts or resets its part counter' },
  LastPartId: { id: 'Line.LastPartId', dataType: 'UInt32', writer: 'plc',
    description: 'PartId of the last part the photo-eye triggered in this epoch (0: none yet)' },
  OutcomeCount: { id: 'Plc.Outcomes.Count', dataType: 'UInt32', writer: 'plc',
    description: 'Outcomes logged in this epoch (decisions, and late results); Plc.Outcomes.Log holds the newest' },
  StationAlive: { id: 'Plc.StationAlive', dataType: 'Boolean', writer: 'plc',
    description: 'Heartbeat changed within the allowed interval' },
  GateWindowMs: { id: 'Plc.GateWindowMs', dataType: 'UInt32', writer: 'plc',
    description: 'Reject-gate window per part, ms' },
} as const satisfies Record<string, PlcTagSpec>;

export type StationTagKey = keyof typeof stationTags;
export type PlcTagKey = keyof typeof plcTags;

/**
 * NodeIds the station writes. Every one can be overridden from config: a real
 * PLC has its own tag names and namespace (e.g. `ns=3;s="DB_Vision"."PartId"`).
 */
export interface PlcNodeIds {
  partId: string;
  epoch: string;
  pass: string;
  code: string;
  score: string;
  heartbeat: string;
  /** Station.Ready (the interlock bit; written with every heartbeat) */
  ready: string;
}

/** Order of the WriteValues in the per-part WriteRequest: the strobe is last. */
export const RESULT_WRITE_ORDER = ['pass', 'code', 'score', 'epoch', 'partId'] as const satisfies readonly StationTagKey[];

/**
 * The PLC's outcome log: a UInt32 array of [PartId, outcome] pairs, oldest first, the newest
 * `OUTCOME_LOG_SIZE` entries of this epoch. Read it with Plc.Outcomes.Count in ONE ReadRequest:
 * the entries new since a previous read are the last (count − previousCount) pairs.
 */
export const OUTCOME_LOG_TAG = { id: 'Plc.Outcomes.Log', description: 'Newest outcomes: [PartId, outcome code] pairs, oldest first' } as const;
export const OUTCOME_LOG_SIZE = 4096;
/**
 * Outcome codes in the log. 'late' is logged (again) when a result arrives after its part timed out.
 * A part that reached the photo-eye while the vision system was not ready is logged as 'rejected'
 * (it was rejected, and the station's rows know accepted / rejected / timeout / late); the PLC
 * counts it apart in Plc.Counters.RejectedNotReady, and `sim.outcomes()` says 'not_ready'.
 */
export const OUTCOME_CODES = { accepted: 1, rejected: 2, timeout: 3, late: 4 } as const;
export type OutcomeName = keyof typeof OUTCOME_CODES;
export const OUTCOME_NAMES: Readonly<Record<number, OutcomeName>> = Object.freeze({ 1: 'accepted', 2: 'rejected', 3: 'timeout', 4: 'late' });

/** `ns=<index>;s=<id>` */
export function stringNodeId(id: string, namespaceIndex = PLC_DEFAULT_NAMESPACE_INDEX): string {
  return `ns=${namespaceIndex};s=${id}`;
}

export const defaultPlcNodeIds: Readonly<PlcNodeIds> = Object.freeze({
  partId: stringNodeId(stationTags.partId.id),
  epoch: stringNodeId(stationTags.epoch.id),
  pass: stringNodeId(stationTags.pass.id),
  code: stringNodeId(stationTags.code.id),
  score: stringNodeId(stationTags.score.id),
  heartbeat: stringNodeId(stationTags.heartbeat.id),
  ready: stringNodeId(stationTags.ready.id),
});

/** Default NodeIds of the PLC's counters (for tools/tests that read them). */
export const defaultPlcCounterNodeIds: Readonly<Record<PlcTagKey, string>> = Object.freeze(
  Object.fromEntries(Object.entries(plcTags).map(([k, t]) => [k, stringNodeId(t.id)])) as Record<PlcTagKey, string>,
);

/**
 * Plain snapshot of the PLC's counters. Keys are the OPC UA browse names
 * (the last segment of each `plcTags` id), so a snapshot read over OPC UA
 * from a real PLC and one from the simulator compare key by key.
 */
export interface PlcCounters {
  Parts: number;
  Accepted: number;
  Rejected: number;
  RejectedTimeout: number;
  LateResults: number;
  SequenceMismatch: number;
  DuplicateResults: number;
  ResultsReceived: number;
  OrphanResults: number;
  WrongEpochResults: number;
  RejectedNotReady: number;
  /** Station.Ready and the heartbeat alive: the line may run */
  StationReady: boolean;
  Epoch: number;
  LastPartId: number;
  OutcomeCount: number;
  StationAlive: boolean;
  GateWindowMs: number;
}

// ns=<n>;(s|i|g|b)=<...>  or  nsu=<uri>;(s|i|g|b)=<...>  or  (s|i|g|b)=<...>
const NODE_ID_RE = /^(?:(?:ns=\d+|nsu=[^;]+);)?(?:s=.+|i=\d+|g=[0-9a-fA-F-]{36}|b=[A-Za-z0-9+/=]+)$/;

/** Cheap syntactic check of a NodeId string (the link parses it for real). */
export function isNodeIdString(s: unknown): s is string {
  return typeof s === 'string' && NODE_ID_RE.test(s);
}

/**
 * Merge config overrides over the defaults. Returns the merged NodeIds and the
 * list of problems (empty when valid): unknown keys, non-NodeId strings, two
 * roles mapped to the same NodeId.
 */
export function resolvePlcNodeIds(overrides: Partial<Record<string, unknown>> = {}): {
  nodeIds: PlcNodeIds; problems: string[];
} {
  const problems: string[] = [];
  const nodeIds: PlcNodeIds = { ...defaultPlcNodeIds };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (!(key in defaultPlcNodeIds)) { problems.push(`unknown PLC tag "${key}"`); continue; }
    if (!isNodeIdString(value)) { problems.push(`${key}: "${String(value)}" is not a NodeId (ns=<n>;s=<id>)`); continue; }
    nodeIds[key as keyof PlcNodeIds] = value;
  }
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(nodeIds)) {
    const other = seen.get(value);
    if (other) problems.push(`${other} and ${key} both map to ${value}`);
    seen.set(value, key);
  }
  return { nodeIds, problems };
}
