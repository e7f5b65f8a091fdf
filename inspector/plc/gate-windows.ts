/**
 * GateWindows: the PLC logic of the simulator, with no OPC UA in it (runs
 * whether or not plc-simulator.ts's server is up).
 *
 *  - parts are numbered where they are triggered: one `partArrived()` call = one
 *    part, PartIds 1, 2, 3… within the current epoch (a new epoch on every PLC
 *    start; `epoch` below);
 *  - each part holds a reject-gate window of `gateWindowMs`; a valid accept
 *    (Pass = true AND Code = 0) for that (Epoch, PartId) inside the window
 *    accepts it, any other result rejects it, no result rejects it when the
 *    window closes (RejectedTimeout). First result wins; later ones are
 *    DuplicateResults; results after the window are LateResults (the part stays
 *    rejected);
 *  - a result is NEVER applied to a part other than the one it names: another
 *    epoch → WrongEpochResults, a PartId not triggered yet (or 0) →
 *    OrphanResults. (An earlier version held a result "for a part not seen yet"
 *    and applied it to the next part: a station one part ahead would then have
 *    its verdicts applied to the wrong parts.)
 *  - every decision (and every late result) is logged as (PartId, outcome) in a
 *    ring the station reads back over OPC UA (Plc.Outcomes.*).
 */
import type { Logger } from '../core/logger.js';
import { OUTCOME_CODES, OUTCOME_LOG_SIZE, type PlcCounters } from './plc-contract.js';

export interface PartOutcome {
  /** 'not_ready': the part reached the photo-eye while the vision system was not ready (rejected at once) */
  outcome: 'accepted' | 'rejected' | 'timeout' | 'not_ready';
  pass: boolean | null;
  code: number | null;
  score: number | null;
  /** result time minus photo-eye time, ms */
  resultAfterMs: number | null;
  /** a result came after the window closed (outcome stays 'timeout') */
  late: boolean;
  /** which physical part it was (the simulated line's item index; -1 unknown) */
  item: number;
}

/** Outcomes of a range of parts (what the bench and plc-sim-process ask for). */
export interface OutcomeSummary {
  /** parts in the range the photo-eye has seen (decided or window still open) */
  parts: number;
  accepted: number;
  /** outcome 'rejected' (a result said reject, or was invalid) */
  rejected: number;
  /** outcome 'timeout' (no result inside the window) */
  timeout: number;
  /** a result came after the window */
  late: number;
  /** parts with no result at all: neither in time nor late (not-ready parts are not among them) */
  noResult: number;
  /** outcome 'not_ready' (the part came while the vision system was not ready: rejected at once, not triggered) */
  notReady: number;
  /** parts whose PLC outcome disagrees with the result the station sent (should be 0) */
  mismatched: number;
}

/** What became of one result: applied inside its window, late, a second one, or refused (epoch, unknown id). */
export type ResultFate = 'in_time' | 'late' | 'duplicate' | 'refused';

/** The values latched from one WriteRequest for one strobe. */
export interface Latched { pass: boolean | null; code: number | null; score: number | null; epoch: number | null; valid: boolean }

/** The counters this logic keeps (StationAlive and GateWindowMs come from the simulator). */
export type GateCounters = Omit<PlcCounters, 'StationAlive' | 'StationReady' | 'GateWindowMs' | 'Epoch' | 'LastPartId' | 'OutcomeCount'>;

interface OutcomeRecord extends PartOutcome { arrivedAt: number }
interface Open { at: number; item: number }

export class GateWindows {
  /** live counters (the address space reads them directly) */
  readonly counters: GateCounters = {
    Parts: 0, Accepted: 0, Rejected: 0, RejectedTimeout: 0, LateResults: 0, SequenceMismatch: 0,
    DuplicateResults: 0, ResultsReceived: 0, OrphanResults: 0, WrongEpochResults: 0, RejectedNotReady: 0,
  };
  private gateTimer: NodeJS.Timeout | null = null;
  private lastArrivedId = 0;
  private lastStrobeId = 0;
  /** undecided parts, id → photo-eye time; insertion order = arrival order */
  private readonly open = new Map<number, Open>();
  private readonly outcomeMap = new Map<number, OutcomeRecord>();
  /** outcome log ring (Plc.Outcomes.Log): ids and codes, `logCount` entries written in all */
  private readonly logIds = new Uint32Array(OUTCOME_LOG_SIZE);
  private readonly logCodes = new Uint8Array(OUTCOME_LOG_SIZE);
  private logCount = 0;
  /**
   * What the simulated line knows and a real PLC does not: which parts were defective
   * (`isDefective(item)`), so that a soak can count escapes (a defective part accepted).
   */
  readonly truth = { defectiveParts: 0, escapes: 0, goodParts: 0, goodRejected: 0 };
  isDefective: ((item: number) => boolean) | null = null;

  constructor(
    readonly gateWindowMs: number,
    private readonly maxOutcomes: number,
    private readonly log: Logger,
    /** this PLC run's part-numbering epoch (non-zero) */
    readonly epoch: number,
  ) {
    if (!Number.isInteger(epoch) || epoch <= 0 || epoch > 0xffffffff) throw new RangeError(`epoch must be a non-zero UInt32, got ${epoch}`);
  }

  /** Parts whose window is still open. */
  get pendingParts(): number { return this.open.size; }
  /** PartId of the last part triggered (0: none yet). */
  get lastPartId(): number { return this.lastArrivedId; }
  /** Outcomes logged so far in this epoch. */
  get outcomeCount(): number { return this.logCount; }

  /** The photo-eye saw a part (`item`: which physical part, when the simulated line knows). Returns its PartId. */
  partArrived(item = -1): number {
    const now = performance.now();
    const id = ++this.lastArrivedId;
    this.counters.Parts++;
    this.open.set(id, { at: now, item });
    this.armGate(now);
    return id;
  }

  /**
   * The photo-eye saw a part while the vision system was not ready (the interlock is off): number
   * it and reject it at once. No window opens (no result can accept it) and the camera is not
   * triggered; it is counted apart (RejectedNotReady), never as a timeout or a late result.
   */
  partNotReady(item = -1): number {
    const now = performance.now();
    const id = ++this.lastArrivedId;
    this.counters.Parts++;
    this.counters.RejectedNotReady++;
    this.counters.Rejected++;
    this.tally(item, false);
    this.record(id, { outcome: 'not_ready', pass: null, code: null, score: null, resultAfterMs: null, late: false, arrivedAt: now, item });
    this.logOutcome(id, OUTCOME_CODES.rejected);
    return id;
  }

  /**
   * One strobe (PartId write) with the values latched from the same request. Returns what became
   * of it (the simulator's LineTiming latches 'in_time' and 'late' results).
   */
  onResult(partId: number, r: Latched): ResultFate {
    const now = performance.now();
    const c = this.counters;
    c.ResultsReceived++;
    if (!r.valid) this.log.warn({ partId, ...r }, 'invalid result (Pass/Code/Score/Epoch missing or mistyped before the strobe): reject');
    if (r.epoch !== this.epoch) { c.WrongEpochResults++; return 'refused'; } // another (or no) epoch: never applied
    if (partId !== this.lastStrobeId + 1) c.SequenceMismatch++;
    this.lastStrobeId = partId;
    if (partId === 0 || partId > this.lastArrivedId) { c.OrphanResults++; return 'refused'; } // never applied to another part
    const open = this.open.get(partId);
    if (open !== undefined) {
      this.open.delete(partId);
      if (now - open.at <= this.gateWindowMs) { this.decide(partId, open, r, now - open.at); return 'in_time'; }
      this.timeout(partId, open); // window closed, gate timer not run yet
    }
    const rec = this.outcomeMap.get(partId);
    if (rec && (rec.outcome !== 'timeout' || rec.late)) { c.DuplicateResults++; return 'duplicate'; }
    c.LateResults++;
    this.logOutcome(partId, OUTCOME_CODES.late);
    if (rec) {
      rec.late = true;
      rec.pass = r.pass; rec.code = r.code; rec.score = r.score;
      rec.resultAfterMs = now - rec.arrivedAt;
    }
    return 'late';
  }

  /** Stop the gate timer (a later partArrived() arms it again). */
  stop(): void {
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.gateTimer = null;
  }

  /** The outcome log, oldest first: [PartId, code] pairs of the newest min(count, OUTCOME_LOG_SIZE) entries. */
  outcomeLog(): Uint32Array {
    const n = Math.min(this.logCount, OUTCOME_LOG_SIZE);
    const out = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const k = (this.logCount - n + i) % OUTCOME_LOG_SIZE;
      out[2 * i] = this.logIds[k]!;
      out[2 * i + 1] = this.logCodes[k]!;
    }
    return out;
  }

  /** Snapshot of the decided parts (last maxOutcomes), PartId → outcome. */
  outcomes(): Map<number, PartOutcome> {
    const m = new Map<number, PartOutcome>();
    for (const [id, r] of this.outcomeMap) {
      m.set(id, { outcome: r.outcome, pass: r.pass, code: r.code, score: r.score,
        resultAfterMs: r.resultAfterMs, late: r.late, item: r.item });
    }
    return m;
  }

  /** Summary over PartIds [from, to] (inclusive). Parts evicted from the outcome history are not counted. */
  outcomeSummary(from: number, to: number): OutcomeSummary {
    const sum: OutcomeSummary = { parts: 0, accepted: 0, rejected: 0, timeout: 0, late: 0, noResult: 0, mismatched: 0, notReady: 0 };
    const last = Math.min(to, this.lastArrivedId);
    for (let id = Math.max(1, from); id <= last; id++) {
      const r = this.outcomeMap.get(id);
      if (!r) { if (this.open.has(id)) sum.parts++; continue; }
      sum.parts++;
      if (r.late) sum.late++;
      if (r.outcome === 'not_ready') { sum.notReady++; sum.rejected++; continue; }
      if (r.outcome === 'timeout') {
        sum.timeout++;
        if (!r.late) sum.noResult++;
        continue;
      }
      if (r.outcome === 'accepted') sum.accepted++; else sum.rejected++;
      const saidAccept = r.pass === true && r.code === 0;
      if ((r.outcome === 'accepted') !== saidAccept) sum.mismatched++;
    }
    return sum;
  }

  private decide(id: number, open: Open, r: Latched, afterMs: number): void {
    const accept = r.valid && r.pass === true && r.code === 0;
    if (accept) this.counters.Accepted++; else this.counters.Rejected++;
    this.tally(open.item, accept);
    this.record(id, { outcome: accept ? 'accepted' : 'rejected', pass: r.pass, code: r.code, score: r.score,
      resultAfterMs: afterMs, late: false, arrivedAt: open.at, item: open.item });
    this.logOutcome(id, accept ? OUTCOME_CODES.accepted : OUTCOME_CODES.rejected);
  }

  private tally(item: number, accepted: boolean): void {
    if (!this.isDefective || item < 0) return;
    if (this.isDefective(item)) { this.truth.defectiveParts++; if (accepted) this.truth.escapes++; } else {
      this.truth.goodParts++; if (!accepted) this.truth.goodRejected++;
    }
  }

  private timeout(id: number, open: Open): void {
    this.tally(open.item, false);
    this.counters.RejectedTimeout++;
    this.counters.Rejected++;
    this.record(id, { outcome: 'timeout', pass: null, code: null, score: null, resultAfterMs: null, late: false,
      arrivedAt: open.at, item: open.item });
    this.logOutcome(id, OUTCOME_CODES.timeout);
  }

  private logOutcome(id: number, code: number): void {
    const k = this.logCount % OUTCOME_LOG_SIZE;
    this.logIds[k] = id;
    this.logCodes[k] = code;
    this.logCount++;
  }

  private record(id: number, rec: OutcomeRecord): void {
    this.outcomeMap.set(id, rec);
    if (this.outcomeMap.size > this.maxOutcomes) {
      const oldest = this.outcomeMap.keys().next();
      if (!oldest.done) this.outcomeMap.delete(oldest.value);
    }
  }

  /** One timer, due when the oldest open window closes (windows close in arrival order). */
  private armGate(now: number): void {
    if (this.gateTimer) return;
    const first = this.open.values().next();
    if (first.done) return;
    const delay = Math.max(1, Math.ceil(first.value.at + this.gateWindowMs - now) + 1);
    this.gateTimer = setTimeout(() => {
      this.gateTimer = null;
      const t = performance.now();
      for (const [id, o] of this.open) {
        if (t - o.at <= this.gateWindowMs) break;
        this.open.delete(id);
        this.timeout(id, o);
      }
      this.armGate(t);
    }, delay);
  }
}
