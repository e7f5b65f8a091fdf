/**
 * Three-way merge of a label edit onto a newer revision saved by someone else
 * (used by the label saver on a 409). Pure: no DOM, tested in test/ui-label-merge.test.ts.
 */
import type { LabelPut, Region } from './api.js';

/** What a label says, without its revision. */
export interface LabelContent { verdict: LabelPut['verdict']; defectClass?: string | null; regions: Region[] }
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Three-way merge of this user's edit (`mine`, based on `base`) onto the server's newer label (`theirs`). */
export function mergeLabel(base: LabelContent | null, mine: LabelContent, theirs: LabelContent | null): LabelContent {
  if (!theirs) return mine;
  const b: LabelContent = base ?? { verdict: theirs.verdict, defectClass: null, regions: [] };
  const pick = <T>(bv: T, mv: T, tv: T): T => (same(bv, mv) ? tv : mv);
  const baseById = new Map(b.regions.map((r) => [r.id, r]));
  const mineById = new Map(mine.regions.map((r) => [r.id, r]));
  const out = new Map(theirs.regions.map((r) => [r.id, r]));
  for (const [id, r] of mineById) if (!same(baseById.get(id), r)) out.set(id, r); // added or changed here
  for (const id of baseById.keys()) if (!mineById.has(id)) out.delete(id); // deleted here
  const base0 = base ? b.verdict : null; // no base: any verdict here is a choice
  return {
    verdict: base0 === mine.verdict ? theirs.verdict : mine.verdict,
    defectClass: pick(b.defectClass ?? null, mine.defectClass ?? null, theirs.defectClass ?? null),
    regions: [...out.values()],
  };
}
