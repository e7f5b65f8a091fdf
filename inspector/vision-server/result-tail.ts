/**
 * The results database, followed from the vision server's worker: every new row (one per
 * part the line numbered, inspected or not) becomes one ResultReadyEvent. The worker reads
 * the store's SQLite file read-only (WAL: readers never block the store worker's writes)
 * by rowid, so nothing is added to the part loop: the result exists once the store has it.
 *
 * Rows are taken from the highest rowid present when the tail starts: history is not
 * replayed as events (a client reads history elsewhere; see the README).
 *
 * A row the PLC's gate outcome made first (reason 'not_seen': the station had no record of
 * the part yet) may still be completed by the part's inspection record (the store upserts it
 * into the same row). Such a row is held `notSeenHoldMs` and read again before its event,
 * so the event says what the row finally says.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { openReadOnly } from '../results/result-store.js';
import { ResultCode, type PartReason, type Verdict } from '../core/types.js';

/** The columns of a results row the event is made of. */
export interface TailRow {
  id: number;
  run_id: string;
  seq: number;
  captured_at_ms: number;
  verdict: Verdict;
  code: number;
  score: number | null;
  model_name: string;
  model_version: string;
  inference_ms: number | null;
  frame_to_verdict_ms: number | null;
  line_epoch: number | null;
  part_id: number | null;
  reason: PartReason | null;
}

const COLUMNS = 'id, run_id, seq, captured_at_ms, verdict, code, score, model_name, model_version, inference_ms, frame_to_verdict_ms, line_epoch, part_id, reason';

/** 40100-1 ResultStateDataType (12.19): 1 Completed, 3 Aborted, 4 Failed (0 Undefined, 2 Processing unused). */
export const ResultState = { COMPLETED: 1, ABORTED: 3, FAILED: 4 } as const;

/**
 * ResultState is the state of the processing, not the verdict (the verdict is in ResultContent):
 * a part the model judged (pass, defect, unregistrable) is Completed; a part not inspected
 * because inspection was stopped is Aborted; a part that could not be judged (dropped, camera
 * error, inference error or timeout, never seen) is Failed.
 */
export function resultStateOf(row: Pick<TailRow, 'code' | 'reason'>): number {
  if (row.code === ResultCode.INSPECTION_STOPPED) return ResultState.ABORTED;
  if (row.reason !== null) return ResultState.FAILED;
  return row.code === ResultCode.INFERENCE_ERROR || row.code === ResultCode.INFERENCE_TIMEOUT || row.code === ResultCode.NOT_INSPECTED
    ? ResultState.FAILED : ResultState.COMPLETED;
}

/** The part's PartId as the PLC numbers it: "<epoch>/<partId>" (a row without line truth: "run/<runId>/<seq>"). */
export function partIdOf(row: Pick<TailRow, 'line_epoch' | 'part_id' | 'run_id' | 'seq'>): string {
  return row.part_id !== null && row.line_epoch !== null ? `${row.line_epoch}/${row.part_id}` : `run/${row.run_id}/${row.seq}`;
}

/** A result's system-wide id: the station, the run and the row's sequence number in it. */
export function resultIdOf(station: string, row: Pick<TailRow, 'run_id' | 'seq'>): string {
  return `${station}/${row.run_id}/${row.seq}`;
}

export class ResultTail {
  private readonly db: BetterSqlite3.Database;
  private readonly next: BetterSqlite3.Statement;
  private readonly byId: BetterSqlite3.Statement;
  /** 'not_seen' rows waiting for their hold to end: [id, due (ms)] in id order */
  private held: Array<[number, number]> = [];
  private lastId: number;
  private timer: NodeJS.Timeout | null = null;
  /** rows handed on since the start */
  rows = 0;

  constructor(dbPath: string, private readonly onRow: (row: TailRow) => void, private readonly batch = 1000, private readonly notSeenHoldMs = 2000) {
    this.db = openReadOnly(dbPath);
    this.lastId = (this.db.prepare('SELECT coalesce(max(id), 0) FROM results').pluck().get() as number);
    this.next = this.db.prepare(`SELECT ${COLUMNS} FROM results WHERE id > ? ORDER BY id LIMIT ?`);
    this.byId = this.db.prepare(`SELECT ${COLUMNS} FROM results WHERE id = ?`);
  }

  /** Read what is new now; returns how many rows were handed on. */
  poll(): number {
    const now = Date.now();
    while (this.held.length > 0 && this.held[0]![1] <= now) { // holds end in id order (same hold for all)
      const row = this.byId.get(this.held.shift()![0]) as TailRow | undefined;
      if (row) { this.rows++; this.onRow(row); }
    }
    const rows = this.next.all(this.lastId, this.batch) as TailRow[];
    for (const r of rows) {
      this.lastId = r.id;
      if (r.reason === 'not_seen' && this.notSeenHoldMs > 0) { this.held.push([r.id, now + this.notSeenHoldMs]); continue; }
      this.rows++;
      this.onRow(r);
    }
    return rows.length;
  }

  /** Poll every `everyMs` (a full batch is followed at once by the next). */
  start(everyMs: number): void {
    const tick = (): void => {
      let n = this.batch;
      while (n === this.batch) n = this.poll();
      this.timer = setTimeout(tick, everyMs);
    };
    this.timer = setTimeout(tick, everyMs);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.db.close();
  }
}
