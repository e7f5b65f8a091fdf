/**
 * Marks the result rows of parts whose images retention deleted: their image
 * and anomaly-map paths become null, through the ResultStore (the store worker
 * owns writes to the results database). Queued in chunks so a large pass
 * does not hold the caller's event loop.
 */
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { ResultStore } from '../results/result-store.js';
import type { DeletedPart } from './retention.js';

export async function markDeleted(store: Pick<ResultStore, 'update'>, deleted: readonly DeletedPart[], chunk = 256): Promise<number> {
  let n = 0;
  for (const d of deleted) {
    if (d.runId === null || d.seq === null) continue; // orphan file: no row
    store.update(d.seq, d.runId, { imagePath: null, anomalyMapPath: null });
    if (++n % chunk === 0) await yieldLoop();
  }
  return n;
}
