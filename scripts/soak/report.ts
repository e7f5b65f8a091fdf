/**
 * What the soak checks in the station's results.sqlite once everything has
 * stopped, against what the line (the PLC simulators) knows: every part of
 * every epoch has exactly one row, what the gate did is in the row, no
 * defective part was accepted (escapes), no part was judged on another part's
 * image (wrong-part results), and the file is intact.
 */
import Database from 'better-sqlite3';
import { basename } from 'node:path';

export interface EpochTruth {
  epoch: number;
  /** parts the photo-eye numbered in this epoch (the simulator's last report, or higher rows) */
  parts: number;
  /** the simulator's own tallies at its last report (a killed one loses what came after) */
  escapes: number;
  defectiveParts: number;
  killed: boolean;
}

export interface DbReport {
  rows: number;
  photoEyeParts: number;
  partsWithoutRow: number;
  duplicateRows: number;
  rowsOutsideEpochs: number;
  inspected: number;
  notInspected: Record<string, number>;
  /** rows whose gate outcome the station read back from the PLC */
  partsWithOneOutcome: number;
  /** rows without a gate outcome: the PLC was killed before the station read it (counted, not hidden) */
  outcomeUnknown: number;
  outcomeUnknownOfKilledPlc: number;
  gate: Record<string, number>;
  escapesInRows: number;
  wrongPartResults: number;
  integrity: string;
}

export function analyseResults(dbPath: string, epochs: EpochTruth[], items: string[], defective: ReadonlySet<number>): DbReport {
  const db = new Database(dbPath, { readonly: true });
  try {
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    const rows = db.prepare('SELECT line_epoch AS e, part_id AS p, reason, code, source_ref AS src, gate_outcome AS g FROM results WHERE part_id IS NOT NULL')
      .all() as Array<{ e: number; p: number; reason: string | null; code: number; src: string | null; g: string | null }>;
    const known = new Map(epochs.map((e) => [e.epoch, e]));
    const seen = new Map<number, Set<number>>();
    let duplicateRows = 0; let rowsOutsideEpochs = 0; let inspected = 0; let escapesInRows = 0; let wrongPartResults = 0;
    let outcomeUnknown = 0; let outcomeUnknownOfKilledPlc = 0;
    const notInspected: Record<string, number> = {};
    const gate: Record<string, number> = {};
    for (const r of rows) {
      const ep = known.get(r.e);
      if (!ep) { rowsOutsideEpochs++; continue; }
      let set = seen.get(r.e);
      if (!set) { set = new Set(); seen.set(r.e, set); }
      if (set.has(r.p)) duplicateRows++;
      set.add(r.p);
      if (r.p > ep.parts) ep.parts = r.p; // triggered after the simulator's last report
      const item = (r.p - 1) % items.length;
      if (r.reason === null && r.code !== 6) {
        inspected++;
        if (r.src !== null && basename(r.src) !== items[item]) wrongPartResults++;
      } else {
        const why = r.reason ?? 'unspecified';
        notInspected[why] = (notInspected[why] ?? 0) + 1;
      }
      if (r.g === null) { outcomeUnknown++; if (ep.killed) outcomeUnknownOfKilledPlc++; } else gate[r.g] = (gate[r.g] ?? 0) + 1;
      if (r.g === 'accepted' && defective.has(item)) escapesInRows++;
    }
    const photoEyeParts = epochs.reduce((a, e) => a + e.parts, 0);
    let partsWithoutRow = 0;
    for (const e of epochs) partsWithoutRow += e.parts - (seen.get(e.epoch)?.size ?? 0);
    return {
      rows: rows.length, photoEyeParts, partsWithoutRow, duplicateRows, rowsOutsideEpochs, inspected, notInspected,
      partsWithOneOutcome: rows.length - outcomeUnknown - duplicateRows, outcomeUnknown, outcomeUnknownOfKilledPlc, gate,
      escapesInRows, wrongPartResults, integrity,
    };
  } finally {
    db.close();
  }
}
