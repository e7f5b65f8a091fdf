/**
 * Retention: a temp images folder filled past a small budget by the real
 * ImageWriter (old and new rejects, passes, labelled and exported parts,
 * orphan files); one pass; what is kept, what is gone, what was reported.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { openReadOnly, ResultStore, type ResultRow } from '../inspector/results/result-store.js';
import { openReviewDb } from '../inspector/review/review-db.js';
import { ExportRegistry } from '../inspector/export/export-registry.js';
import { inPassSample, runRetention, type RetentionPolicy } from '../inspector/retention/retention.js';
import { markDeleted } from '../inspector/retention/mark-deleted.js';
import { RetentionScheduler } from '../inspector/retention/retention-scheduler.js';
import client from 'prom-client';
import { fillStation, putLabel } from './helpers/export-fixture.js';

const RUN = 'run-r';
const DAY = 86_400_000;
const NOW = Date.now();
const OLD_REJECTS = [1, 2, 3, 4];
const LABELLED = 5;
const EXPORTED = 6;
const NEW_REJECTS = [7, 8, 9, 10];
const PASSES = Array.from({ length: 30 }, (_, i) => 11 + i);
const KEEP_EVERY = 3;

let work: string; let imagesDir: string; let resultsDbPath: string; let reviewDbPath: string;

function du(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p); else out.set(p.slice(root.length + 1), statSync(p).size);
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
const partFiles = (verdict: string, seq: number): string[] => [`images/${RUN}/${verdict}/${seq}.png`, `images/${RUN}/${verdict}/${seq}.map.png`];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inspector-retention-'));
  imagesDir = join(work, 'var');
  resultsDbPath = join(work, 'results.sqlite');
  reviewDbPath = join(work, 'review.sqlite');
  await fillStation({
    dbPath: resultsDbPath, imagesDir, runId: RUN, withMaps: true,
    parts: [
      ...[...OLD_REJECTS, LABELLED, EXPORTED].map((seq) => ({ seq, verdict: 'reject' as const, capturedAtMs: NOW - 40 * DAY + seq })),
      ...NEW_REJECTS.map((seq) => ({ seq, verdict: 'reject' as const, capturedAtMs: NOW - DAY + seq })),
      ...PASSES.map((seq) => ({ seq, verdict: 'pass' as const, capturedAtMs: NOW - 5 * DAY + seq })),
    ],
  });
  const db = openReviewDb(reviewDbPath);
  putLabel(db, RUN, LABELLED, { verdict: 'true_defect', defectClass: 'scratch', regions: [{ id: 'a', kind: 'box', x: 1, y: 1, w: 5, h: 5 }] });
  const reg = new ExportRegistry(db);
  reg.start({ id: 'exp-1', format: 'coco', filter: { labelledOnly: false }, outDir: join(work, 'out'), actor: 'ml1',
    items: [{ runId: RUN, seq: EXPORTED, imagePath: `images/${RUN}/reject/${EXPORTED}.png` }] });
  reg.finish('exp-1', { images: 1, good: 0, defect: {}, annotations: 0, excludedUnsure: 0, skippedUnlabelledRejects: 0, missingImages: 0, defectsWithoutRegions: 0 }, 'x');
  db.close();
  // orphan files (no result row): an old one and one being written right now
  writeFileSync(join(imagesDir, 'images', RUN, 'reject', '999.png'), Buffer.alloc(5000, 1));
  const old = (NOW - 2 * DAY) / 1000;
  utimesSync(join(imagesDir, 'images', RUN, 'reject', '999.png'), old, old);
  writeFileSync(join(imagesDir, 'images', RUN, 'pass', '998.png'), Buffer.alloc(3000, 2));
});
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

describe('retention', () => {
  it('keeps labelled and exported images, drops old rejects and unsampled passes, meets the budget, reports what it freed', async () => {
    const before = du(imagesDir);
    const sampled = PASSES.filter((s) => inPassSample(RUN, s, KEEP_EVERY));
    expect(sampled.length).toBeGreaterThan(2);
    expect(sampled.length).toBeLessThan(PASSES.length);
    const sizeOf = (verdict: string, seq: number): number => partFiles(verdict, seq).reduce((a, f) => a + (before.get(f) ?? 0), 0);
    // what the policy alone leaves: protected + young rejects + sampled passes + the fresh orphan;
    // the budget sits one sampled pass below it, so the oldest sampled pass must go too
    const afterPolicy = sizeOf('reject', LABELLED) + sizeOf('reject', EXPORTED)
      + NEW_REJECTS.reduce((a, s) => a + sizeOf('reject', s), 0) + sampled.reduce((a, s) => a + sizeOf('pass', s), 0) + 3000;
    const policy: RetentionPolicy = { budgetBytes: afterPolicy - 1, rejectDays: 30, passDays: 1, passKeepEvery: KEEP_EVERY };
    expect(sum(before)).toBeGreaterThan(policy.budgetBytes * 2);

    const { report, deleted } = await runRetention({ ...policy, imagesDir, resultsDbPath, reviewDbPath, now: NOW });
    const after = du(imagesDir);
    const gone = [...before.keys()].filter((f) => !after.has(f));

    // never touched: labelled, exported, young rejects, the fresh orphan
    for (const seq of [LABELLED, EXPORTED, ...NEW_REJECTS]) for (const f of partFiles('reject', seq)) expect(after.has(f), f).toBe(true);
    expect(after.has(`images/${RUN}/pass/998.png`)).toBe(true);
    // gone: old unlabelled rejects, the old orphan, passes outside the sample, the oldest sampled pass (budget)
    for (const seq of OLD_REJECTS) for (const f of partFiles('reject', seq)) expect(after.has(f), f).toBe(false);
    expect(after.has(`images/${RUN}/reject/999.png`)).toBe(false);
    const passesLeft = PASSES.filter((s) => after.has(`images/${RUN}/pass/${s}.png`));
    expect(passesLeft).toEqual(sampled.slice(1));

    // the budget is met, and the report matches the files removed
    expect(sum(after)).toBeLessThanOrEqual(policy.budgetBytes);
    expect(report.budgetMet).toBe(true);
    expect(report.usageBefore).toBe(sum(before));
    expect(report.usageAfter).toBe(sum(after));
    expect(report.freedFiles).toBe(gone.length);
    expect(report.freedBytes).toBe(gone.reduce((a, f) => a + before.get(f)!, 0));
    expect(report.byReason['reject-expired'].parts).toBe(OLD_REJECTS.length);
    expect(report.byReason['pass-unsampled'].parts).toBe(PASSES.length - sampled.length);
    expect(report.byReason['budget-pass-sample'].parts).toBe(1);
    expect(report.byReason['budget-reject'].parts).toBe(0);
    expect(report.byReason.orphan.parts).toBe(1);
    expect(report.kept).toMatchObject({ labelled: 1, exported: 1, youngRejects: NEW_REJECTS.length, sampledPasses: sampled.length - 1 });

    // the rows of deleted parts lose their image paths (through the store worker); the log keeps them
    const store = await ResultStore.open({ dbPath: resultsDbPath, logger: logger.child({ test: 'retention' }) });
    expect(await markDeleted(store, deleted)).toBe(deleted.length - 1); // the orphan has no row
    await store.close();
    const ro = openReadOnly(resultsDbPath);
    const rows = ro.prepare('SELECT * FROM results ORDER BY seq').all() as ResultRow[];
    ro.close();
    const deletedSeqs = new Set(deleted.map((d) => d.seq));
    for (const r of rows) {
      if (deletedSeqs.has(r.seq)) expect([r.image_path, r.anomaly_map_path]).toEqual([null, null]);
      else expect(r.image_path).toBe(`images/${RUN}/${r.verdict}/${r.seq}.png`);
    }
    const db = openReviewDb(reviewDbPath);
    expect(db.prepare('SELECT count(*) FROM retention_deleted').pluck().get()).toBe(deleted.length);
    expect(db.prepare('SELECT sum(bytes) FROM retention_deleted').pluck().get()).toBe(report.freedBytes);
    db.close();

    // a second pass under the same budget finds nothing more to do (the sample is stable)
    const again = await runRetention({ ...policy, imagesDir, resultsDbPath, reviewDbPath, now: NOW });
    expect(again.report.freedFiles).toBe(0);
    expect(du(imagesDir)).toEqual(after);
  });

  it('dry run reports without deleting; a tight budget never touches labelled or exported images', async () => {
    const before = du(imagesDir);
    const dry = await runRetention({ budgetBytes: 0, rejectDays: 30, passDays: 1, passKeepEvery: KEEP_EVERY,
      imagesDir, resultsDbPath, reviewDbPath, now: NOW, dryRun: true });
    expect(du(imagesDir)).toEqual(before);
    expect(dry.report.freedBytes).toBeGreaterThan(0);
    const hard = await runRetention({ budgetBytes: 0, rejectDays: 30, passDays: 1, passKeepEvery: KEEP_EVERY,
      imagesDir, resultsDbPath, reviewDbPath, now: NOW });
    expect(hard.report.freedBytes).toBe(dry.report.freedBytes);
    expect(hard.report.budgetMet).toBe(false); // labelled/exported images alone exceed a zero budget
    const left = [...du(imagesDir).keys()].sort();
    expect(left).toEqual([...partFiles('reject', LABELLED), ...partFiles('reject', EXPORTED), `images/${RUN}/pass/998.png`].sort());
  });

  it('the scheduler runs a pass in a worker, marks rows and counts freed bytes in the metrics', async () => {
    const orphan = join(imagesDir, 'images', RUN, 'reject', '997.png');
    writeFileSync(orphan, Buffer.alloc(7000, 3));
    const old = (NOW - 2 * DAY) / 1000;
    utimesSync(orphan, old, old);
    const registry = new client.Registry();
    const updates: Array<[number, string]> = [];
    const s = RetentionScheduler.start({ budgetBytes: 10 ** 12, rejectDays: 30, passDays: 1, passKeepEvery: KEEP_EVERY, intervalMs: 3_600_000,
      imagesDir, resultsDbPath, reviewDbPath, registry, logger: logger.child({ test: 'retention' }),
      store: { update: (seq: number, runId: string) => { updates.push([seq, runId]); } } });
    try {
      const report = await s.runNow();
      expect(report).toMatchObject({ freedFiles: 1, freedBytes: 7000, budgetMet: true });
      expect(existsSync(orphan)).toBe(false);
      // the orphan has no row; the rows whose files the previous (unmarked) pass deleted are cleared now
      expect(updates.length).toBe(report.byReason.missing.parts);
      expect(updates.length).toBeGreaterThan(0);
      for (const [seq] of updates) expect(existsSync(join(imagesDir, 'images', RUN, 'pass', `${seq}.png`)) || existsSync(join(imagesDir, 'images', RUN, 'reject', `${seq}.png`))).toBe(false);
      const text = await registry.metrics();
      expect(text).toMatch(/inspector_retention_freed_bytes_total 7000/);
      expect(text).toMatch(/inspector_retention_usage_bytes \d+/);
    } finally {
      await s.close();
    }
  });
});
