/**
 * Undo / redo of a label page's edits (pure, no DOM; tested in test/ui-label-history.test.ts).
 *
 * Every edit (a verdict, a class, a drawn / moved / resized / deleted region) is
 * one step: the page records the label as it was before the edit. Undo gives back
 * the previous state and redo the undone one; the page then saves that state like
 * any other edit (the label saver sends it as a new revision), so what the server
 * holds follows the undo. A new edit after an undo drops the redo steps, as
 * editors do.
 *
 * A saved label cannot be removed, only changed (the API has no "unlabel"): undoing
 * back to "no verdict yet" keeps the verdict the label has now and takes back the
 * rest (class, regions). `undo()` says so with `keptVerdict`.
 */
import type { LabelVerdict, Region } from './api.js';

export interface LabelState { verdict: LabelVerdict | null; defectClass: string | null; regions: Region[] }

const same = (a: LabelState, b: LabelState): boolean => JSON.stringify(a) === JSON.stringify(b);

export class LabelHistory {
  private past: LabelState[] = [];
  private future: LabelState[] = [];

  constructor(private readonly limit = 200) {}

  /** Record an edit from `before` to `after` (a no-op edit is not a step). */
  record(before: LabelState, after: LabelState): void {
    if (same(before, after)) return;
    this.past.push(before);
    if (this.past.length > this.limit) this.past.shift();
    this.future = [];
  }

  /** The state to go back to from `current`, or null when there is nothing to undo. */
  undo(current: LabelState): { state: LabelState; keptVerdict: boolean } | null {
    const prev = this.past.pop();
    if (!prev) return null;
    this.future.push(current);
    const keptVerdict = prev.verdict === null && current.verdict !== null;
    return { state: keptVerdict ? { ...prev, verdict: current.verdict } : prev, keptVerdict };
  }

  /** The state undone last, or null when there is nothing to redo. */
  redo(current: LabelState): LabelState | null {
    const next = this.future.pop();
    if (!next) return null;
    this.past.push(current);
    return next;
  }

  get canUndo(): boolean { return this.past.length > 0; }
  get canRedo(): boolean { return this.future.length > 0; }

  /** Forget everything (another part was opened). */
  clear(): void { this.past = []; this.future = []; }
}
