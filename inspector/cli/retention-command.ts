/**
 * `inspector retention run`: one retention pass now, in this process at low
 * CPU priority, with the station's configured policy (or flags). Deleted
 * parts' result rows lose their image paths through a ResultStore (WAL: the
 * station's store worker may be writing at the same time).
 */
import os from 'node:os';
import { Command } from 'commander';
import { logger } from '../core/logger.js';
import { resolveConfig } from '../station/config.js';
import { ResultStore } from '../results/result-store.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { runRetention } from '../retention/retention.js';
import { markDeleted } from '../retention/mark-deleted.js';

interface RetentionFlags {
  config?: string; db?: string; reviewDb?: string; images?: string; budget?: number; rejectDays?: number;
  passDays?: number; passKeepEvery?: number; dryRun?: boolean;
}

const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${v}`);
  return n;
};

export function retentionCommand(): Command {
  const cmd = new Command('retention').description('image retention within the disk budget');
  cmd.command('run')
    .description('run one retention pass now and print what it freed')
    .option('--config <file>', 'station config JSON (results paths and the retention section)')
    .option('--db <file>', 'results database (default: results.dbPath)')
    .option('--review-db <file>', 'review database (default: review.sqlite next to --db)')
    .option('--images <dir>', 'images root (default: results.imagesDir)')
    .option('--budget <bytes>', 'disk budget in bytes (default: retention.budgetBytes)', num)
    .option('--reject-days <n>', 'keep unlabelled rejects this many days', num)
    .option('--pass-days <n>', 'keep all unlabelled passes this many days, then only the sample', num)
    .option('--pass-keep-every <n>', 'the pass sample: keep one pass in N', num)
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .action(async (o: RetentionFlags) => {
      const config = resolveConfig({}, o.config);
      const r = config.retention;
      const dbPath = o.db ?? config.results.dbPath;
      const log = logger.child({ mod: 'retention' });
      try { os.setPriority(0, 19); } catch { /* keep the inherited priority */ }
      const { report, deleted } = await runRetention({
        budgetBytes: o.budget ?? r.budgetBytes, rejectDays: o.rejectDays ?? r.rejectDays, passDays: o.passDays ?? r.passDays,
        passKeepEvery: Math.max(1, Math.round(o.passKeepEvery ?? r.passKeepEvery)), imagesDir: o.images ?? config.results.imagesDir,
        resultsDbPath: dbPath, reviewDbPath: o.reviewDb ?? reviewDbPathFor(dbPath), dryRun: o.dryRun ?? false, log,
      });
      if (!report.dryRun && deleted.length) {
        const store = await ResultStore.open({ dbPath, logger: log });
        try { await markDeleted(store, deleted); } finally { await store.close(); }
      }
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    });
  return cmd;
}
