/**
 * Sparkplug B messages of the station's edge node: topics and payloads, encoded with Eclipse Tahu's
 * `sparkplug-payload` (no hand-written protobuf). Pure functions: the edge-node worker decides when.
 *
 * Topics (Sparkplug 3.0 namespace): spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|NCMD>/<node>
 * and spBv1.0/<group>/<DBIRTH|DDATA|DCMD>/<node>/<device>; the primary host's STATE is
 * spBv1.0/STATE/<hostId> (JSON). Metric names are documented in inspector/mqtt/README.md.
 */
import { createRequire } from 'node:module';
import Long from 'long';
import type { UMetric, UPayload, UDataSet } from 'sparkplug-payload/lib/sparkplugbpayload.js';

const require = createRequire(import.meta.url);
// the package is CommonJS with a namespace factory; 'spBv1.0' is the only namespace it knows
const codec = (require('sparkplug-payload') as typeof import('sparkplug-payload')).get('spBv1.0')!;

export type NodeVerb = 'NBIRTH' | 'NDATA' | 'NDEATH' | 'NCMD';
export type DeviceVerb = 'DBIRTH' | 'DDATA' | 'DCMD';

export const nodeTopic = (group: string, verb: NodeVerb, node: string): string => `spBv1.0/${group}/${verb}/${node}`;
export const deviceTopic = (group: string, verb: DeviceVerb, node: string, device: string): string =>
  `spBv1.0/${group}/${verb}/${node}/${device}`;
export const stateTopic = (hostId: string): string => `spBv1.0/STATE/${hostId}`;

/** Metric names (the same in BIRTH and DATA, so a consumer can map them without aliases). */
export const M = {
  bdSeq: 'bdSeq',
  rebirth: 'Node Control/Rebirth',
  station: 'Properties/Station',
  modelName: 'Model/Name',
  modelVersion: 'Model/Version',
  parts: 'Counters/Parts',
  notInspected: 'Counters/NotInspected',
  plcWrites: 'Counters/PlcWrites',
  plcWriteErrors: 'Counters/PlcWriteErrors',
  alarms: 'Alarms/Active',
  results: 'Results',
  dropped: 'Results/Dropped',
} as const;

/**
 * The columns of the Results DataSet (one row per part), in order; the types are Sparkplug's. Integers that can
 * pass 2^31 (index, part id, times) are Double, exact to 2^53, and the code is UInt32: sparkplug-payload 1.0.3 encodes
 * every cell type but decodes only Int64 (as a string), UInt32, Float, Double, Boolean and String cells (else "Invalid
 * DataSetValue"), so a consumer using it would choke on UInt64, DateTime or Int32 cells.
 */
export const RESULT_COLUMNS = [
  ['Index', 'Double'], ['LineEpoch', 'Double'], ['PartId', 'Double'], ['Verdict', 'String'], ['Code', 'UInt32'],
  ['Score', 'Double'], ['ModelName', 'String'], ['ModelVersion', 'String'], ['Reason', 'String'],
  ['DefectClass', 'String'], ['InferenceMs', 'Double'], ['FrameToVerdictMs', 'Double'], ['PlcWriteMs', 'Double'],
  ['GateOutcome', 'String'], ['CapturedAtMs', 'Double'], ['RunId', 'String'], ['Seq', 'Double'],
] as const;

/** One stored part as published (a results row, read by the tail). Unknown values: null. */
export interface PartResult {
  index: number; lineEpoch: number | null; partId: number | null; verdict: string; code: number; score: number | null;
  modelName: string; modelVersion: string; reason: string | null; defectClass: string | null;
  inferenceMs: number | null; frameToVerdictMs: number | null; plcWriteMs: number | null;
  gateOutcome: string | null; capturedAtMs: number; runId: string; seq: number;
}

/** The station's state as the main thread reports it (a small periodic message, not the Station). */
export interface StationState {
  modelName: string; modelVersion: string;
  parts: number; notInspected: number; plcWrites: number; plcWriteErrors: number;
  alarms: string[];
}

// DataSet cells cannot be null: numbers unknown are NaN, strings unknown are '' (README: "unknown")
const num = (v: number | null): number => v ?? Number.NaN;
const int = (v: number | null): number => v ?? -1;
const str = (v: string | null): string => v ?? '';

function resultsDataSet(parts: readonly PartResult[]): UDataSet {
  return {
    numOfColumns: Long.fromNumber(RESULT_COLUMNS.length, true),
    columns: RESULT_COLUMNS.map(([c]) => c),
    types: RESULT_COLUMNS.map(([, t]) => t),
    rows: parts.map((p) => [
      p.index, int(p.lineEpoch), int(p.partId), p.verdict, p.code,
      num(p.score), p.modelName, p.modelVersion, str(p.reason), str(p.defectClass), num(p.inferenceMs),
      num(p.frameToVerdictMs), num(p.plcWriteMs), str(p.gateOutcome), p.capturedAtMs, p.runId, p.seq,
    ]),
  };
}

const metric = (name: string, type: UMetric['type'], value: UMetric['value'], timestamp?: number): UMetric =>
  (timestamp === undefined ? { name, type, value } : { name, type, value, timestamp: Long.fromNumber(timestamp, true) });

function stateMetrics(s: StationState): UMetric[] {
  return [
    metric(M.modelName, 'String', s.modelName), metric(M.modelVersion, 'String', s.modelVersion),
    metric(M.parts, 'UInt64', Long.fromNumber(s.parts, true)), metric(M.notInspected, 'UInt64', Long.fromNumber(s.notInspected, true)),
    metric(M.plcWrites, 'UInt64', Long.fromNumber(s.plcWrites, true)), metric(M.plcWriteErrors, 'UInt64', Long.fromNumber(s.plcWriteErrors, true)),
    metric(M.alarms, 'String', s.alarms.join('; ')),
  ];
}

const encode = (p: UPayload): Buffer => Buffer.from(codec.encodePayload(p));
const seqOf = (seq: number): Long => Long.fromNumber(seq, true);

export function nbirth(o: { bdSeq: number; seq: number; station: string; state: StationState; now: number }): Buffer {
  return encode({ timestamp: Long.fromNumber(o.now, true), seq: seqOf(o.seq), metrics: [
    metric(M.bdSeq, 'Int64', Long.fromNumber(o.bdSeq)), metric(M.rebirth, 'Boolean', false),
    metric(M.station, 'String', o.station), ...stateMetrics(o.state),
  ] });
}

/** The device's birth: the Results DataSet's schema (no rows) and the drop counter. */
export function dbirth(o: { seq: number; dropped: number; now: number }): Buffer {
  return encode({ timestamp: Long.fromNumber(o.now, true), seq: seqOf(o.seq), metrics: [
    metric(M.results, 'DataSet', resultsDataSet([])), metric(M.dropped, 'UInt64', Long.fromNumber(o.dropped, true)),
  ] });
}

/** One batch of parts, in index order; `dropped` (cumulative) lets a consumer account for every gap. */
export function ddata(o: { seq: number; parts: readonly PartResult[]; dropped: number; now: number }): Buffer {
  return encode({ timestamp: Long.fromNumber(o.now, true), seq: seqOf(o.seq), metrics: [
    metric(M.results, 'DataSet', resultsDataSet(o.parts)), metric(M.dropped, 'UInt64', Long.fromNumber(o.dropped, true)),
  ] });
}

/** Node metrics that changed (counters, alarms, live model). */
export function ndata(o: { seq: number; state: StationState; now: number }): Buffer {
  return encode({ timestamp: Long.fromNumber(o.now, true), seq: seqOf(o.seq), metrics: stateMetrics(o.state) });
}

/** The will (and the explicit death on a clean stop): bdSeq only, no seq (Sparkplug 3.0). */
export function ndeath(bdSeq: number, now: number): Buffer {
  return encode({ timestamp: Long.fromNumber(now, true), metrics: [metric(M.bdSeq, 'Int64', Long.fromNumber(bdSeq))] });
}

/** An NCMD asking the node to rebirth (what a host application sends; used by tests and tools). */
export function encodeCommand(o: { rebirth: boolean }, now = Date.now()): Buffer {
  return encode({ timestamp: Long.fromNumber(now, true), metrics: [metric(M.rebirth, 'Boolean', o.rebirth)] });
}

export function decode(buf: Uint8Array): UPayload {
  return codec.decodePayload(buf);
}

/** True for an NCMD that asks for a rebirth (Node Control/Rebirth = true). */
export function isRebirthCommand(p: UPayload): boolean {
  return (p.metrics ?? []).some((m) => m.name === M.rebirth && m.value === true);
}

/** A Long (as the decoder returns uint64/int64) or a number, as a number. */
export function toNumber(v: unknown): number {
  if (Long.isLong(v)) return (v as Long).toNumber();
  return typeof v === 'number' ? v : Number.NaN;
}

/** Results DataSet rows back into parts (consumers and tests). */
export function decodeResults(p: UPayload): PartResult[] {
  const ds = (p.metrics ?? []).find((m) => m.name === M.results)?.value as UDataSet | undefined;
  if (!ds) return [];
  const cols = ds.columns ?? [];
  const at = (row: unknown[], name: string): unknown => row[cols.indexOf(name)];
  const n = (row: unknown[], name: string): number | null => { const v = toNumber(at(row, name)); return Number.isNaN(v) ? null : v; };
  const id = (row: unknown[], name: string): number | null => { const v = n(row, name); return v === null || v < 0 ? null : v; };
  const s = (row: unknown[], name: string): string | null => { const v = at(row, name) as string; return v === '' ? null : v; };
  return ds.rows.map((r) => ({
    index: toNumber(at(r, 'Index')), lineEpoch: id(r, 'LineEpoch'), partId: id(r, 'PartId'), verdict: at(r, 'Verdict') as string,
    code: toNumber(at(r, 'Code')), score: n(r, 'Score'), modelName: at(r, 'ModelName') as string, modelVersion: at(r, 'ModelVersion') as string,
    reason: s(r, 'Reason'), defectClass: s(r, 'DefectClass'), inferenceMs: n(r, 'InferenceMs'), frameToVerdictMs: n(r, 'FrameToVerdictMs'),
    plcWriteMs: n(r, 'PlcWriteMs'), gateOutcome: s(r, 'GateOutcome'), capturedAtMs: toNumber(at(r, 'CapturedAtMs')),
    runId: at(r, 'RunId') as string, seq: toNumber(at(r, 'Seq')),
  }));
}
