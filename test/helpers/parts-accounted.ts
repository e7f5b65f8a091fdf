/**
 * The "no part was lost" check of the station tests that change models or
 * calibration while the line runs (the PLC simulator's line clock triggers the
 * station's replay-triggered camera). Call it after the line has stopped
 * (`sim.stopLine()`) and then capture (`station.stopCapture()`): it waits for
 * the last gate windows and for the PLC's outcomes to be read back, then checks
 * the line's truth:
 *  - every part the PLC numbered has exactly one row (matched by `part_id` in
 *    the PLC's epoch), and the row holds the gate's outcome read back from the PLC;
 *  - a row with `reason` null was inspected, and the PLC did what the station
 *    said for it (unless its result came too late: timeout / late);
 *  - a part that was not inspected (reason set: dropped under load, camera
 *    error…) is never an accept at the PLC;
 *  - no part has two rows; nothing failed on the way.
 * Returns the rows (in part order) for further checks.
 */
import { expect } from 'vitest';
import type { Station } from '../../inspector/station/station.js';
import type { PlcSimulator } from '../../inspector/plc/plc-simulator.js';
import { until } from './wait.js';

type Rows = Awaited<ReturnType<Station['store']['query']>>;

export async function expectEveryPartJudgedOnce(station: Station, sim: PlcSimulator): Promise<{
  /** every row of the run, in part order */
  rows: Rows;
  /** the rows of inspected parts (reason null), in part order */
  inspected: Rows;
  /** PartIds that were not inspected (their rows say why) */
  missing: number[];
}> {
  expect(sim.lineRunning, 'stop the line before checking the parts').toBe(false);
  await until(() => sim.pendingParts === 0, 30_000, 'the last gate windows to close');
  await station.settleOutcomes(15_000);
  await station.store.flush();
  const rec = station.loop.rec;
  const c = sim.counters();
  const outcomes = sim.outcomes();
  const rows = (await station.store.query({ runId: station.runId, limit: 100_000 }))
    .sort((a, b) => (a.part_id ?? 0) - (b.part_id ?? 0));
  const byPart = new Map(rows.map((r) => [r.part_id, r]));
  // one row per part the PLC numbered, none twice, none of another epoch
  expect(c.Parts).toBe(c.LastPartId);
  expect(byPart.size, 'one row per part id').toBe(rows.length);
  expect(rows.length).toBe(c.Parts);
  const missing: number[] = [];
  for (let id = 1; id <= c.LastPartId; id++) {
    const row = byPart.get(id);
    const o = outcomes.get(id);
    expect(row, `row of part ${id}`).toBeDefined();
    expect(o, `PLC outcome of part ${id}`).toBeDefined();
    expect(row!.line_epoch, `part ${id}`).toBe(sim.epoch);
    // the row says what the gate did, as the PLC reports it
    expect(row!.gate_outcome, `gate outcome in the row of part ${id}`).toBe(o!.late ? 'late' : o!.outcome);
    if (row!.reason === null) {
      // inspected: the PLC did what the station said (a late result stays a reject)
      if (!o!.late && o!.outcome !== 'timeout') expect(o!.outcome, `part ${id}`).toBe(row!.verdict === 'pass' ? 'accepted' : 'rejected');
    } else {
      missing.push(id);
      expect(row!.verdict, `part ${id} (${row!.reason})`).toBe('reject');
      expect(o!.outcome, `part ${id} (${row!.reason})`).not.toBe('accepted');
    }
  }
  if (missing.length > 0) {
    const why = missing.map((id) => `${id}:${byPart.get(id)!.reason}`).join(',');
    console.log(`${missing.length} parts not inspected under load (camera dropped ${station.source.stats.dropped} frames): ${why}`);
  }
  const inspected = rows.filter((r) => r.reason === null);
  expect(inspected.length).toBe(rec.parts - rec.inferenceTimeouts);
  const acc = await station.store.partAccounting(station.runId);
  expect(acc.duplicates).toBe(0);
  expect(acc.gate.unknown).toBe(0);
  expect(c.DuplicateResults).toBe(0);
  expect(c.WrongEpochResults).toBe(0);
  expect(c.OrphanResults).toBe(0);
  expect(c.Accepted + c.Rejected).toBe(c.Parts);
  expect(rec.plcFailed).toBe(0);
  expect(rec.inferenceErrors).toBe(0);
  expect(rec.partSyncErrors).toBe(0);
  expect(await station.store.count(station.runId)).toBe(rows.length);
  return { rows, inspected, missing };
}

/** The model versions of consecutive inspected parts, each run once: e.g. ['1.0.0', '1.1.0', '1.0.0']. */
export function versionRuns(rows: Array<{ model_version: string; reason?: string | null }>): string[] {
  const runs: string[] = [];
  for (const r of rows) if (!r.reason && runs.at(-1) !== r.model_version) runs.push(r.model_version);
  return runs;
}
