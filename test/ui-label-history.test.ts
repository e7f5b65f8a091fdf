/**
 * The label page's undo / redo (ui/src/label-history.ts): each edit one step,
 * redo dropped by a new edit, and a saved verdict never undone to "none".
 */
import { describe, it, expect } from 'vitest';
import { LabelHistory, type LabelState } from '../ui/src/label-history.js';

const box = (id: string, x: number) => ({ id, kind: 'box' as const, x, y: 10, w: 20, h: 20 });
const none: LabelState = { verdict: null, defectClass: null, regions: [] };

describe('label undo / redo', () => {
  it('walks back and forth through the edits, and a new edit drops the redo steps', () => {
    const h = new LabelHistory();
    const s1: LabelState = { verdict: 'true_defect', defectClass: 'scratch', regions: [] };
    const s2: LabelState = { ...s1, regions: [box('a', 1)] };
    const s3: LabelState = { ...s1, regions: [box('a', 9)] }; // moved
    h.record(none, s1); h.record(s1, s2); h.record(s2, s3);
    h.record(s3, { ...s3 }); // nothing changed: not a step
    expect(h.undo(s3)).toEqual({ state: s2, keptVerdict: false });
    expect(h.undo(s2)).toEqual({ state: s1, keptVerdict: false });
    expect(h.redo(s1)).toEqual(s2);
    expect(h.canRedo).toBe(true);
    const s4: LabelState = { ...s2, verdict: 'unsure' };
    h.record(s2, s4);
    expect(h.canRedo).toBe(false);
    expect(h.redo(s4)).toBeNull();
    expect(h.undo(s4)!.state).toEqual(s2);
  });

  it('undoing the first edit of an unlabelled part keeps its verdict (a saved label cannot be removed)', () => {
    const h = new LabelHistory();
    const s1: LabelState = { verdict: 'true_defect', defectClass: null, regions: [box('a', 1)] };
    h.record(none, s1);
    expect(h.undo(s1)).toEqual({ state: { verdict: 'true_defect', defectClass: null, regions: [] }, keptVerdict: true });
    expect(h.undo(s1)).toBeNull();
    expect(h.redo({ verdict: 'true_defect', defectClass: null, regions: [] })).toEqual(s1);
  });

  it('keeps at most `limit` steps', () => {
    const h = new LabelHistory(3);
    let cur: LabelState = { verdict: 'unsure', defectClass: null, regions: [] };
    for (let i = 1; i <= 5; i++) { const next = { ...cur, regions: [box('a', i)] }; h.record(cur, next); cur = next; }
    let n = 0;
    while (h.undo(cur)) n++;
    expect(n).toBe(3);
  });
});
