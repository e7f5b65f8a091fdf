/**
 * The ResultStore's public shapes: the record it stores, the patches and gate outcomes that
 * arrive later, a stored row as SQLite returns it, the options and the counters. Types only,
 * no code: kept apart from result-store.ts so importers that only need a row's shape (review
 * queries, the part loop's patch) read them without the store's machinery. result-store.ts
 * re-exports every name.
 */
import type { Logger } from '../core/logger.js';
import type { GateOutcome, PartReason, ResultRecord, Verdict } from '../core/types.js';
// Type-only: importing store-worker.ts for values would run the worker here.
import type { BatchCounts } from './store-worker.js';

export type StoreRecord = ResultRecord & { runId: string };

/**
 * The gate's outcome of a PLC-numbered part, read back from the PLC (`ResultStore.setGateOutcome`).
 * `fill` is used only when the part has no row yet (the station never saw it): the row made for it takes
 * run_id / seq / captured_at_ms from there, so `fill.seq` must be a seq no record of `fill.runId` uses.
 */
export interface GateOutcomeFact {
  lineEpoch: number;
  partId: number;
  outcome: GateOutcome;
  /** when the outcome was read (Date.now()) */
  atMs: number;
  fill: { runId: string; seq: number; capturedAtMs: number };
}

/** Facts that arrive after the verdict. Only the fields present are written. */
export interface ResultPatch {
  plcWriteMs?: number | null;
  plcStatus?: ResultRecord['plcStatus'];
  imagePath?: string | null;
  anomalyMapPath?: string | null;
}

/** A stored row, as SQLite returns it (column names). */
export interface ResultRow {
  id: number; seq: number; captured_at_ms: number; verdict: Verdict; code: number; score: number | null;
  model_name: string; model_version: string; provider: string;
  dispatch_ms: number | null; inference_ms: number | null; frame_to_verdict_ms: number | null;
  /** 'none': a row made by a gate outcome for a part the station never saw (no PLC write of its own) */
  plc_write_ms: number | null; plc_status: ResultRecord['plcStatus'] | 'none'; source_ref: string | null;
  image_path: string | null; anomaly_map_path: string | null; run_id: string;
  /** the model's defect class of the verdict (schema v3; NULL on passes, errors and rows stored before v3) */
  defect_class: string | null;
  /** line truth (schema v4; NULL on rows stored before v4 or by a writer without it): the PLC's numbering epoch and part id */
  line_epoch: number | null;
  part_id: number | null;
  /** why the part has no model verdict (NULL: inspected) */
  reason: PartReason | null;
  /** what the gate did, read back from the PLC (NULL: not read back yet), and when it was read */
  gate_outcome: GateOutcome | null;
  gate_outcome_at_ms: number | null;
}

export interface ResultStoreOptions {
  dbPath: string;
  logger: Logger;
  /** Longest time an operation waits on the main thread before it is posted (default 50). */
  batchMs?: number;
  /** Post at once when this many operations are waiting (default 256). */
  maxBatch?: number;
  /** Restart backoff after a worker death: first and largest delay in ms (default 100 / 5000). */
  restartBackoffMs?: { initial: number; max: number };
  /**
   * @internal test hooks: `dieAfterCommitOfBatch` applies to the first worker only;
   * `kill` allows debugKill().
   */
  testHooks?: { dieAfterCommitOfBatch?: number; kill?: boolean };
}

export interface ResultStoreStats extends BatchCounts {
  added: number;
  updates: number;
  /** setGateOutcome() calls */
  gateOutcomes: number;
  batchesCommitted: number;
  restarts: number;
  /** operations added or updated but not yet acknowledged as committed */
  backlog: number;
  workerUp: boolean;
}
