/**
 * The "no part was lost" check of the station tests that change models or
 * calibration while parts flow: after stopCapture() and the last gate windows,
 * every frame the station received has exactly one stored record, in order,
 * and a verdict at the PLC that matches it; frames without a record are only
 * those the camera mailbox dropped (counted), and the PLC fail-safe-rejected
 * them; nothing failed on the way. Returns the stored rows for further checks.
 */
import { expect } from 'vitest';
import type { Station } from '../../inspector/station/station.js';
import type { PlcSimulator } from '../../inspector/plc/plc-simulator.js';

type Rows = Awaited<ReturnType<Station['store']['query']>>;

export async function expectEveryPartJudgedOnce(station: Station, sim: PlcSimulator): Promise<{ rows: Rows; missing: number[] }> {
  const rec = station.loop.rec;
  const c = sim.counters();
  const outcomes = sim.outcomes();
  const rows = await station.store.query({ runId: station.runId, limit: 100_000 });
  const seqs = rows.map((r) => r.seq);
  // one record per frame the station received, in order, none twice
  expect(rows.length).toBe(rec.parts);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
  // every part the station received got its verdict at the PLC in time
  for (const row of rows) {
    const o = outcomes.get(row.seq);
    expect(o, `part ${row.seq}`).toBeDefined();
    expect(o!.outcome, `part ${row.seq}`).toBe(row.verdict === 'pass' ? 'accepted' : 'rejected');
  }
  // parts without a record are frames the camera mailbox dropped (counted; the PLC fail-safe-rejected them):
  // on an overloaded machine the line can outrun the box, with or without model operations
  const missing = Array.from({ length: seqs.at(-1)! }, (_, i) => i + 1).filter((id) => !seqs.includes(id));
  expect(missing.length).toBeLessThanOrEqual(station.source.stats.dropped);
  for (const id of missing) expect(outcomes.get(id)?.pass ?? false).toBe(false);
  if (missing.length > 0) console.log(`camera dropped ${station.source.stats.dropped} frames under load: ${missing.join(',')}`);
  expect(c.DuplicateResults).toBe(0);
  // a result that follows a dropped part skips its PartId: the simulator counts that as out of sequence
  expect(c.SequenceMismatch).toBeLessThanOrEqual(missing.length);
  expect(c.RejectedTimeout).toBe(missing.filter((id) => outcomes.has(id)).length);
  expect(rec.plcFailed).toBe(0);
  expect(rec.inferenceErrors).toBe(0);
  expect(rec.plcAcked).toBe(rec.parts);
  expect(await station.store.count(station.runId)).toBe(rec.parts);
  return { rows, missing };
}

/** The model versions of consecutive parts, each run once: e.g. ['1.0.0', '1.1.0', '1.0.0']. */
export function versionRuns(rows: Array<{ model_version: string }>): string[] {
  const runs: string[] = [];
  for (const r of rows) if (runs.at(-1) !== r.model_version) runs.push(r.model_version);
  return runs;
}
