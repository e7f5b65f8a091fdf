/** The review queue's order, kept per filter in sessionStorage so the label page can step through it with j/k. */
import type { Part } from '../api.js';

const KEY = 'inspector.queue.';

export function rememberQueue(filterQuery: string, parts: Part[]): void {
  try {
    sessionStorage.setItem(KEY + filterQuery, JSON.stringify(parts.map((p) => [p.runId, p.seq])));
  } catch { /* storage full: stepping falls back to fetching the queue */ }
}

export function queueOrder(filterQuery: string): Array<[string, number]> | null {
  const raw = sessionStorage.getItem(KEY + filterQuery);
  if (!raw) return null;
  try { return JSON.parse(raw) as Array<[string, number]>; } catch { return null; }
}
