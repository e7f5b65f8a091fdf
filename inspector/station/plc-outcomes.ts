/**
 * PlcOutcomes: what the gate did with every part, read back from the PLC.
 *
 * A successful write proves only that the PLC received a result, not what the
 * gate did with it (late, wrong epoch, duplicate…). So a few times a second,
 * off the hot path, this reads the PLC's counters and outcome log in one
 * request (PlcLink.readStatus) and writes each part's outcome into its row
 * (ResultStore.setGateOutcome). A part the station never saw (a lost trigger,
 * the station down) gets its row here, with reason 'not_seen': every part the
 * PLC numbered has exactly one row.
 *
 * Ordering: an outcome for a part the station may still be working on (a
 * PartId above the highest it has accounted for, PartIdentity) waits until the
 * station has passed it, or `settleMs`: frames are processed in trigger order,
 * so a part below that mark that has no row never will.
 *
 * PART_SYNC: raised when the PLC refused results (wrong epoch, a PartId it did
 * not trigger) or an outcome disagrees with what the station sent; cleared at
 * the first later part whose outcome agrees with the station, with no new
 * refusal: the station recovers by itself within one part.
 */
import type { Logger } from '../core/logger.js';
import type { GateOutcome } from '../core/types.js';
import { OUTCOME_NAMES, type PlcCounters } from '../plc/plc-contract.js';
import { Alarm, type Alarms } from './alarms.js';
import type { PartIdentity } from './part-identity.js';

export interface OutcomesPlc {
  readonly state: string;
  readStatus(): Promise<{ counters: PlcCounters; log: Uint32Array }>;
}
export interface OutcomesStore {
  setGateOutcome(o: { lineEpoch: number; partId: number; outcome: GateOutcome; atMs: number;
    fill: { runId: string; seq: number; capturedAtMs: number } }): void;
  lastPartId(lineEpoch: number): Promise<number>;
}
export interface PlcOutcomesOptions {
  plc: OutcomesPlc;
  store: OutcomesStore;
  identity: PartIdentity;
  /** a fresh row seq of the current run, for rows this creates */
  nextSeq: () => number;
  runId: string;
  alarms: Alarms;
  log: Logger;
  /** poll period (default 250 ms) */
  intervalMs?: number;
  /** an outcome waits at most this long for the station to pass its part (default 3000 ms) */
  settleMs?: number;
}

interface Pending { epoch: number; partId: number; outcome: GateOutcome; at: number }

export class PlcOutcomes {
  /** the PLC's counters at the last read (null before the first) */
  counters: PlcCounters | null = null;
  readonly stats = { reads: 0, readErrors: 0, outcomes: 0, rowsCreated: 0, refusals: 0, mismatches: 0, agreements: 0,
    /** outcomes that scrolled out of the PLC's log before they were read */
    missed: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private epoch = 0;
  private lastCount = 0;
  private refusalMark = 0;
  /** the highest PartId of this epoch with an outcome read */
  private highestDecided = 0;
  private readonly pending: Pending[] = [];

  constructor(private readonly o: PlcOutcomesOptions) {}

  /** outcomes read but not yet written (their parts may still be in the station) */
  get pendingCount(): number { return this.pending.length; }

  /** Parts the station accounted for whose outcome has not been read yet (0: their rows are complete). */
  pendingUpTo(identity: PartIdentity): number {
    const epoch = identity.plcEpoch;
    if (epoch === null || this.epoch !== epoch) return 0;
    return Math.max(0, identity.highestAccounted(epoch) - this.highestDecided);
  }

  start(): void {
    const every = this.o.intervalMs ?? 250;
    this.timer ??= setInterval(() => { this.running ??= this.poll().finally(() => { this.running = null; }); }, every);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    this.apply(Date.now(), true); // capture has stopped: no part above the mark will come
  }

  /** One read and apply (the timer calls it; tests and stop paths may too). */
  async poll(): Promise<void> {
    if (this.o.plc.state !== 'connected') return;
    let status: { counters: PlcCounters; log: Uint32Array };
    try {
      status = await this.o.plc.readStatus();
    } catch (err) {
      this.stats.readErrors++;
      this.o.log.debug({ err: (err as Error).message }, 'PLC status read failed');
      return;
    }
    this.stats.reads++;
    const c = status.counters;
    this.counters = c;
    const refusals = c.WrongEpochResults + c.OrphanResults;
    if (c.Epoch !== this.epoch) { // first read, or the PLC renumbered its parts (restart)
      this.o.log.info({ epoch: c.Epoch, previous: this.epoch || null, lastPartId: c.LastPartId }, 'reading PLC outcomes of epoch');
      this.epoch = c.Epoch;
      this.lastCount = 0;
      this.highestDecided = 0;
      this.refusalMark = refusals;
    }
    let refused = refusals - this.refusalMark;
    if (refused < 0) refused = 0; // counters reset
    this.refusalMark = refusals;
    const now = Date.now();
    const fresh = c.OutcomeCount - this.lastCount;
    const inLog = status.log.length / 2;
    const n = Math.min(fresh, inLog);
    if (fresh > inLog) this.stats.missed += fresh - inLog;
    this.lastCount = c.OutcomeCount;
    for (let i = inLog - n; i < inLog; i++) {
      const name = OUTCOME_NAMES[status.log[2 * i + 1]!];
      const partId = status.log[2 * i]!;
      if (name) this.pending.push({ epoch: c.Epoch, partId, outcome: name, at: now });
      if (partId > this.highestDecided) this.highestDecided = partId;
    }
    const agreed = this.apply(now);
    const alarms = this.o.alarms;
    if (refused > 0) {
      this.stats.refusals += refused;
      alarms.set(Alarm.PART_SYNC, true, `the PLC refused ${refused} result(s): wrong epoch or a part it did not trigger`);
    } else if (agreed > 0 && alarms.isRaised(Alarm.PART_SYNC)) {
      alarms.set(Alarm.PART_SYNC, false);
    }
  }

  /** Write the outcomes whose parts the station has passed; returns how many agreed with what it sent. */
  private apply(now: number, all = false): number {
    const settleMs = this.o.settleMs ?? 3000;
    const { identity, store, runId } = this.o;
    let agreed = 0;
    let keep = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i]!;
      if (!all && p.partId > identity.highestAccounted(p.epoch) && now - p.at < settleMs && p.epoch === identity.plcEpoch) {
        this.pending[keep++] = p; // the station may still be inspecting it
        continue;
      }
      store.setGateOutcome({ lineEpoch: p.epoch, partId: p.partId, outcome: p.outcome, atMs: now,
        fill: { runId, seq: this.o.nextSeq(), capturedAtMs: now } });
      this.stats.outcomes++;
      const said = identity.whatWasSaid(p);
      if (said === null) { if (p.outcome !== 'late') this.stats.rowsCreated++; continue; }
      if (p.outcome === 'late' || p.outcome === 'timeout') continue; // in time or not is not a numbering question
      if ((p.outcome === 'accepted') === said) { agreed++; this.stats.agreements++; continue; }
      this.stats.mismatches++;
      this.o.alarms.set(Alarm.PART_SYNC, true, `part ${p.epoch}/${p.partId}: the station said ${said ? 'accept' : 'reject'}, the PLC ${p.outcome} it`);
    }
    this.pending.length = keep;
    return agreed;
  }
}
