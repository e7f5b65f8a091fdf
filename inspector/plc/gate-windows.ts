/**
 * GateWindows: the PLC logic of the simulator, with no OPC UA in it (runs
 * whether or not plc-simulator.ts's server is up).
 *
 *  - parts are counted by a photo-eye: one `partArrived()` call = one part,
 *    ids 1, 2, 3… in arrival order;
 *  - each part holds a reject-gate window of `gateWindowMs`; a valid accept
 *    (Pass = true AND Code = 0) for that PartId inside the window accepts it, any
 *    other result rejects it, no result rejects it when the window closes
 *    (RejectedTimeout). First result wins; later ones are DuplicateResults;
 *    results after the window are LateResults (the part stays rejected);
 *  - a result for a part not seen yet is held and applied if that part arrives
 *    within gateWindowMs of the result, else counted in OrphanResults.
 */
import type { Logger } from '../core/logger.js';
import type { PlcCounters } from './plc-contract.js';

export interface PartOutcome {
  outcome: 'accepted' | 'rejected' | 'timeout';
  pass: boolean | null;
  code: number | null;
  score: number | null;
  /** result time minus photo-eye time, ms (negative: result came before the trigger) */
  resultAfterMs: number | null;
  /** a result came after the window closed (outcome stays 'timeout') */
  late: boolean;
}

/** Outcomes of a range of parts (what the bench and plc-sim-process ask for). */
export interface OutcomeSummary {
  /** parts in the range the photo-eye has seen (decided or window still open) */
  parts: number;
  /** outcome 'accepted' */
  accepted: number;
  /** outcome 'rejected' (a result said reject, or was invalid) */
  rejected: number;
  /** outcome 'timeout' (no result inside the window) */
  timeout: number;
  /** a result came after the window */
  late: number;
  /** parts with no result at all: neither in time nor late */
  noResult: number;
  /** parts whose PLC outcome disagrees with the result the station sent (should be 0) */
  mismatched: number;
}

/** The values latched from one WriteRequest for one strobe. */
export interface Latched { pass: boolean | null; code: number | null; score: number | null; valid: boolean }

/** The counters this logic keeps (StationAlive and GateWindowMs come from the simulator). */
export type GateCounters = Omit<PlcCounters, 'StationAlive' | 'GateWindowMs'>;

interface OutcomeRecord extends PartOutcome { arrivedAt: number }
interface Held extends Latched { receivedAt: number }

const MAX_HELD = 1024;

export class GateWindows {
  /** live counters (the address space reads them directly) */
  readonly counters: GateCounters = {
    Parts: 0, Accepted: 0, Rejected: 0, RejectedTimeout: 0, LateResults: 0, SequenceMismatch: 0,
    DuplicateResults: 0, ResultsReceived: 0, OrphanResults: 0,
  };

  private gateTimer: NodeJS.Timeout | null = null;
  private lastArrivedId = 0;
  private lastStrobeId = 0;
  /** undecided parts, id → photo-eye time; insertion order = arrival order */
  private readonly open = new Map<number, number>();
  private readonly held = new Map<number, Held>();
  private readonly outcomeMap = new Map<number, OutcomeRecord>();

  constructor(
    readonly gateWindowMs: number,
    private readonly maxOutcomes: number,
    private readonly log: Logger,
  ) {}

  /** Parts whose window is still open. */
  get pendingParts(): number { return this.open.size; }

  /** The photo-eye saw a part. Returns its PartId. */
  partArrived(): number {
    const now = performance.now();
    const id = ++this.lastArrivedId;
    this.counters.Parts++;
    const held = this.held.get(id);
    if (held) {
      this.held.delete(id);
      if (now - held.receivedAt <= this.gateWindowMs) {
        this.decide(id, now, held, held.receivedAt - now);
        return id;
      }
      this.counters.OrphanResults++;
    }
    this.open.set(id, now);
    this.armGate(now);
    return id;
  }

  /** One strobe (PartId write) with the values latched from the same request. */
  onResult(partId: number, r: Latched): void {
    const now = performance.now();
    const c = this.counters;
    c.ResultsReceived++;
    if (partId !== this.lastStrobeId + 1) c.SequenceMismatch++;
    this.lastStrobeId = partId;
    if (!r.valid) this.log.warn({ partId, ...r }, 'invalid result (Pass/Code/Score missing or mistyped before the strobe): reject');
    if (partId === 0) { c.OrphanResults++; return; }
    if (partId > this.lastArrivedId) { // result before trigger: hold it
      if (this.held.has(partId)) c.DuplicateResults++;
      else if (this.held.size >= MAX_HELD) c.OrphanResults++;
      else this.held.set(partId, { ...r, receivedAt: now });
      return;
    }
    const arrivedAt = this.open.get(partId);
    if (arrivedAt !== undefined) {
      this.open.delete(partId);
      if (now - arrivedAt <= this.gateWindowMs) { this.decide(partId, arrivedAt, r, now - arrivedAt); return; }
      this.timeout(partId, arrivedAt); // window closed, gate timer not run yet
    }
    const rec = this.outcomeMap.get(partId);
    if (rec && (rec.outcome !== 'timeout' || rec.late)) { c.DuplicateResults++; return; }
    c.LateResults++;
    if (rec) {
      rec.late = true;
      rec.pass = r.pass; rec.code = r.code; rec.score = r.score;
      rec.resultAfterMs = now - rec.arrivedAt;
    }
  }

  /** Held results whose part did not arrive within the window become orphans. */
  expireHeld(): void {
    const now = performance.now();
    for (const [id, h] of this.held) {
      if (now - h.receivedAt > this.gateWindowMs) { this.held.delete(id); this.counters.OrphanResults++; }
    }
  }

  /** Stop the gate timer (a later partArrived() arms it again). */
  stop(): void {
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.gateTimer = null;
  }

  /** Snapshot of the decided parts (last maxOutcomes), PartId → outcome. */
  outcomes(): Map<number, PartOutcome> {
    const m = new Map<number, PartOutcome>();
    for (const [id, r] of this.outcomeMap) {
      m.set(id, { outcome: r.outcome, pass: r.pass, code: r.code, score: r.score,
        resultAfterMs: r.resultAfterMs, late: r.late });
    }
    return m;
  }

  /** Summary over PartIds [from, to] (inclusive). Parts evicted from the outcome history are not counted. */
  outcomeSummary(from: number, to: number): OutcomeSummary {
    const sum: OutcomeSummary = { parts: 0, accepted: 0, rejected: 0, timeout: 0, late: 0, noResult: 0, mismatched: 0 };
    const last = Math.min(to, this.lastArrivedId);
    for (let id = Math.max(1, from); id <= last; id++) {
      const r = this.outcomeMap.get(id);
      if (!r) { if (this.open.has(id)) sum.parts++; continue; }
      sum.parts++;
      if (r.late) sum.late++;
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

  private decide(id: number, arrivedAt: number, r: Latched, afterMs: number): void {
    const accept = r.valid && r.pass === true && r.code === 0;
    if (accept) this.counters.Accepted++; else this.counters.Rejected++;
    this.record(id, { outcome: accept ? 'accepted' : 'rejected', pass: r.pass, code: r.code, score: r.score,
      resultAfterMs: afterMs, late: false, arrivedAt });
  }

  private timeout(id: number, arrivedAt: number): void {
    this.counters.RejectedTimeout++;
    this.counters.Rejected++;
    this.record(id, { outcome: 'timeout', pass: null, code: null, score: null, resultAfterMs: null, late: false, arrivedAt });
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
    const delay = Math.max(1, Math.ceil(first.value + this.gateWindowMs - now) + 1);
    this.gateTimer = setTimeout(() => {
      this.gateTimer = null;
      const t = performance.now();
      for (const [id, at] of this.open) {
        if (t - at <= this.gateWindowMs) break;
        this.open.delete(id);
        this.timeout(id, at);
      }
      this.armGate(t);
    }, delay);
  }
}
