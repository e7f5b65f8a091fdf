/**
 * The results database as the edge node's durable queue. The store worker writes every part's row; this reads them
 * back in rowid order through a read-only connection (WAL: the store's writer is never blocked) from a persisted
 * cursor: the highest rowid the broker has acknowledged (QoS 1 PUBACK). A broker outage, a publisher death or a
 * station restart therefore loses nothing and resumes in order, and nothing is held in memory while the broker is down.
 *
 * Why rowids: the store is the one writer, results rows are never deleted (retention deletes image files, not rows),
 * and an INTEGER PRIMARY KEY without AUTOINCREMENT is max+1: rowids are dense and committed in increasing order, so
 * "every rowid after the cursor" is "every part stored since", and the rowid is the per-station result index a
 * subscriber checks for gaps and repeats.
 *
 * Bounded: rows waiting behind the cursor beyond `maxBacklog` are skipped, oldest first, and counted (persisted with the
 * cursor, so the count a subscriber sees in Results/Dropped is cumulative across restarts).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { openReadOnly } from '../results/result-store.js';
import type { PartResult } from './sparkplug.js';

/** What survives a restart: the acknowledged cursor, the drop count and the last bdSeq used. */
export interface TailState {
  /** every row with id <= ackedId reached the broker (PUBACK) or was dropped */
  ackedId: number;
  /** rows skipped because the backlog was over maxBacklog, since the edge node was first enabled */
  dropped: number;
  /** the Sparkplug birth/death sequence of the last connection (the next one uses +1 mod 256) */
  bdSeq: number;
}

interface Row {
  id: number; run_id: string; seq: number; captured_at_ms: number; verdict: string; code: number; score: number | null;
  model_name: string; model_version: string; inference_ms: number | null; frame_to_verdict_ms: number | null;
  plc_write_ms: number | null; line_epoch: number | null; part_id: number | null; reason: string | null;
  gate_outcome: string | null; gate_outcome_at_ms: number | null; defect_class: string | null;
}

const toPart = (r: Row): PartResult => ({
  index: r.id, lineEpoch: r.line_epoch, partId: r.part_id, verdict: r.verdict, code: r.code, score: r.score,
  modelName: r.model_name, modelVersion: r.model_version, reason: r.reason, defectClass: r.defect_class,
  inferenceMs: r.inference_ms, frameToVerdictMs: r.frame_to_verdict_ms, plcWriteMs: r.plc_write_ms,
  gateOutcome: r.gate_outcome, capturedAtMs: r.captured_at_ms, runId: r.run_id, seq: r.seq,
});

export interface ResultsTailOptions {
  dbPath: string;
  /** the JSON file holding TailState (written atomically: temp file + rename) */
  statePath: string;
  maxBacklog: number;
  /**
   * A row the PLC's gate outcome made first ('not_seen') may still be taken over by the part's own record, which
   * is late: such a row is held (and everything after it, to keep the order) until its outcome is this old.
   */
  notSeenHoldMs: number;
}

export class ResultsTail {
  private readonly db: BetterSqlite3.Database;
  private readonly after: BetterSqlite3.Statement;
  private readonly maxId: BetterSqlite3.Statement;
  readonly state: TailState;
  /** where the state came from: 'file', 'new' (first start: only rows stored from now on are published) or 'reset' */
  readonly origin: 'file' | 'new' | 'reset';

  constructor(private readonly o: ResultsTailOptions) {
    this.db = openReadOnly(o.dbPath);
    this.after = this.db.prepare(`SELECT id, run_id, seq, captured_at_ms, verdict, code, score, model_name, model_version,
      inference_ms, frame_to_verdict_ms, plc_write_ms, line_epoch, part_id, reason, gate_outcome, gate_outcome_at_ms, defect_class
      FROM results WHERE id > ? ORDER BY id LIMIT ?`);
    this.maxId = this.db.prepare('SELECT coalesce(max(id), 0) FROM results').pluck();
    const max = this.maxId.get() as number;
    const saved = readState(o.statePath);
    if (saved === null) {
      // first start: the history before the edge node was enabled is not replayed (the results API has it)
      this.state = { ackedId: max, dropped: 0, bdSeq: 255 };
      this.origin = 'new';
      this.save();
    } else if (saved.ackedId > max) {
      // a cursor past the end belongs to another (replaced) database: publish this one from its start
      this.state = { ...saved, ackedId: 0 };
      this.origin = 'reset';
      this.save();
    } else {
      this.state = saved;
      this.origin = 'file';
    }
  }

  /** Rows stored after `id`. */
  backlog(id: number): number {
    return (this.maxId.get() as number) - id;
  }

  /**
   * How many of the oldest rows not sent yet (after `sentId`) are over the bound and must be skipped (0: within it).
   * The caller counts them as dropped when the cursor passes them (ack()), so a crash in between counts them once.
   */
  overBound(sentId: number): number {
    return Math.max(0, (this.maxId.get() as number) - sentId - this.o.maxBacklog);
  }

  /** Up to `limit` rows after `sentId`, in order, stopping before a 'not_seen' row that may still change. */
  next(sentId: number, limit: number, now = Date.now()): PartResult[] {
    const rows = this.after.all(sentId, limit) as Row[];
    const out: PartResult[] = [];
    for (const r of rows) {
      if (r.reason === 'not_seen' && (r.gate_outcome_at_ms ?? r.captured_at_ms) > now - this.o.notSeenHoldMs) break;
      out.push(toPart(r));
    }
    return out;
  }

  /**
   * Everything up to `id` was acknowledged by the broker or skipped (`dropped` of them): persist it, so that a crash
   * after this never resends those rows nor counts the skipped ones twice.
   */
  ack(id: number, dropped = 0): void {
    if (id <= this.state.ackedId) return;
    this.state.ackedId = id;
    this.state.dropped += dropped;
    this.save();
  }

  setBdSeq(bdSeq: number): void {
    this.state.bdSeq = bdSeq;
    this.save();
  }

  private save(): void {
    const tmp = `${this.o.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state));
    renameSync(tmp, this.o.statePath);
  }

  close(): void {
    this.db.close();
  }
}

function readState(path: string): TailState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const s = JSON.parse(text) as Partial<TailState>;
  const ok = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
  if (!ok(s.ackedId) || !ok(s.dropped) || !ok(s.bdSeq)) throw new Error(`${path}: not an MQTT edge-node state (ackedId, dropped, bdSeq)`);
  return { ackedId: s.ackedId, dropped: s.dropped, bdSeq: s.bdSeq % 256 };
}
