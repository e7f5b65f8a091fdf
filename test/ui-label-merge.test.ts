/**
 * The UI's three-way label merge (ui/src/label-merge.ts): what a reviewer's
 * edit does to a label that another reviewer saved meanwhile.
 */
import { describe, it, expect } from 'vitest';
import { mergeLabel, type LabelContent } from '../ui/src/label-merge.js';

const box = (id: string, x: number) => ({ id, kind: 'box' as const, x, y: 10, w: 20, h: 20 });
const poly = (id: string) => ({ id, kind: 'polygon' as const, points: [[0, 0], [5, 0], [0, 5]] as Array<[number, number]> });

describe('label merge on a conflicting save', () => {
  const base: LabelContent = { verdict: 'true_defect', defectClass: 'scratch', regions: [box('a', 1), box('b', 2)] };

  it('keeps their verdict and class when I only touched regions, and applies my region edits to theirs', () => {
    const mine: LabelContent = { ...base, regions: [box('a', 50), poly('c')] }; // moved a, deleted b, added c
    const theirs: LabelContent = { verdict: 'false_reject', defectClass: 'spot', regions: [box('a', 1), box('b', 2), box('d', 9)] };
    const m = mergeLabel(base, mine, theirs);
    expect(m.verdict).toBe('false_reject');
    expect(m.defectClass).toBe('spot');
    expect(m.regions.map((r) => r.id)).toEqual(['a', 'd', 'c']);
    expect(m.regions[0]).toEqual(box('a', 50));
  });

  it('my changed verdict and class win over theirs; their region additions stay', () => {
    const mine: LabelContent = { ...base, verdict: 'unsure', defectClass: null };
    const theirs: LabelContent = { ...base, verdict: 'false_reject', regions: [...base.regions, box('e', 7)] };
    const m = mergeLabel(base, mine, theirs);
    expect(m.verdict).toBe('unsure');
    expect(m.defectClass).toBeNull();
    expect(m.regions.map((r) => r.id)).toEqual(['a', 'b', 'e']);
  });

  it('a first label racing another first label: everything I set is kept, their regions too', () => {
    const mine: LabelContent = { verdict: 'true_defect', defectClass: 'crack', regions: [box('m', 3)] };
    const theirs: LabelContent = { verdict: 'unsure', defectClass: null, regions: [box('t', 4)] };
    const m = mergeLabel(null, mine, theirs);
    expect(m.verdict).toBe('true_defect');
    expect(m.defectClass).toBe('crack');
    expect(m.regions.map((r) => r.id).sort()).toEqual(['m', 't']);
  });

  it('no label on the server any more: mine as it is', () => {
    expect(mergeLabel(base, base, null)).toEqual(base);
  });
});
