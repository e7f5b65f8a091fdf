/**
 * `inspector backup`: an online SQLite backup of the results and review databases while the
 * real ResultStore (its worker thread, WAL) keeps inserting, verified and described by its
 * manifest; the copy opens as a results database again. Coded errors for a missing database
 * and an existing backup folder; the CLI end to end.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import type { ResultRecord } from '../inspector/core/types.js';
import { ResultStore, type StoreRecord } from '../inspector/results/result-store.js';
import { MIGRATIONS as RESULT_MIGRATIONS } from '../inspector/results/results-schema.js';
import { MIGRATIONS as REVIEW_MIGRATIONS, openReviewDb, reviewDbPathFor } from '../inspector/review/review-db.js';
import { Accounts } from '../inspector/review/accounts.js';
import { backupDatabases, backupStamp, type BackupManifest } from '../inspector/cli/backup-command.js';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof BetterSqlite3;
const log = logger.child({ test: 'backup' }, { level: 'silent' });
const root = join(import.meta.dirname, '..');

let work: string;
let dbPath: string;
let reviewPath: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inspector-backup-'));
  dbPath = join(work, 'var/results.sqlite');
  reviewPath = reviewDbPathFor(dbPath);
  const review = openReviewDb(reviewPath);
  try {
    const accounts = new Accounts(review);
    await accounts.create('qa-lead', 'a long enough password', 'qa');
    await accounts.create('ml-team', 'a long enough password', 'ml');
  } finally { review.close(); }
});
afterAll(() => { rmSync(work, { recursive: true, force: true }); });

function record(runId: string, seq: number): StoreRecord {
  const reject = seq % 7 === 0;
  return {
    runId, seq, capturedAtMs: 1_700_000_000_000 + seq, verdict: reject ? 'reject' : 'pass', code: reject ? 1 : 0,
    score: seq / 10_000, modelName: 'padim', modelVersion: '1.2.0', provider: 'cpu',
    timings: { dispatchMs: 0.25, inferenceMs: 4, frameToVerdictMs: 5, plcWriteMs: null },
    plcStatus: 'skipped' as ResultRecord['plcStatus'], sourceRef: `img/${seq}.png`, imagePath: null, anomalyMapPath: null,
  };
}

/** rows of `results` as a separate connection sees them (committed) */
function committedRows(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try { return db.prepare('SELECT COUNT(*) FROM results').pluck().get() as number; } finally { db.close(); }
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('inspector backup', () => {
  it('backs up a results database the ResultStore keeps writing: a consistent, verified copy that opens again', async () => {
    const store = await ResultStore.open({ dbPath, logger: log });
    let seq = 0;
    let writing = true;
    let writer: Promise<void> = Promise.resolve();
    try {
      store.startRun('run-1', { station: 'test' });
      for (; seq < 5000; seq++) store.add(record('run-1', seq + 1));
      await store.flush();
      const before = committedRows(dbPath);
      expect(before).toBe(5000);
      // the writer: batches of rows, each committed by the store worker, until the backup is done
      writer = (async () => {
        while (writing) {
          for (let k = 0; k < 200; k++) store.add(record('run-1', ++seq));
          await store.flush();
        }
      })();

      const { dir, manifest } = await backupDatabases({
        sources: [{ name: 'results', path: dbPath }, { name: 'review', path: reviewPath }], outDir: join(work, 'backups'), station: 'test',
      });
      writing = false;
      await writer;
      const after = committedRows(dbPath);

      expect(dir).toBe(join(work, 'backups', backupStamp(new Date(manifest.createdAt))));
      expect(readdirSync(join(work, 'backups'))).toEqual([backupStamp(new Date(manifest.createdAt))]); // no .partial left
      expect(readdirSync(dir).sort()).toEqual(['manifest.json', 'results.sqlite', 'review.sqlite']); // standalone files: no -wal/-shm
      expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))).toEqual(manifest);
      // the owner's only: the review database holds password and token hashes
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);

      // the copy opens, is intact, at the source's schema version, and holds a snapshot between before and after
      const copy = new Database(join(dir, 'results.sqlite'), { readonly: true, fileMustExist: true });
      let copied: number;
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(copy.pragma('user_version', { simple: true })).toBe(RESULT_MIGRATIONS.length);
        expect(copy.pragma('journal_mode', { simple: true })).toBe('delete');
        copied = copy.prepare('SELECT COUNT(*) FROM results').pluck().get() as number;
        // every row is whole and the sequence has no hole: one transaction-consistent snapshot
        const seqs = copy.prepare("SELECT MIN(seq) AS lo, MAX(seq) AS hi, COUNT(DISTINCT seq) AS n FROM results WHERE run_id = 'run-1'").get() as { lo: number; hi: number; n: number };
        expect(seqs).toEqual({ lo: 1, hi: copied, n: copied });
        expect(copy.prepare("SELECT COUNT(*) FROM runs WHERE run_id = 'run-1'").pluck().get()).toBe(1);
      } finally { copy.close(); }
      expect(copied).toBeGreaterThanOrEqual(before);
      expect(copied).toBeLessThanOrEqual(after);
      expect(after).toBeGreaterThan(before); // the writer ran around the backup (its first batch at least)

      const results = manifest.databases.find((d) => d.name === 'results')!;
      expect(results).toMatchObject({ source: dbPath, file: 'results.sqlite', userVersion: RESULT_MIGRATIONS.length, integrity: 'ok' });
      expect(results.tables.results).toBe(copied);
      expect(results.tables).toHaveProperty('runs', 1);
      expect(results.sha256).toBe(sha256(join(dir, 'results.sqlite')));
      expect(results.bytes).toBe(readFileSync(join(dir, 'results.sqlite')).length);
      const review = manifest.databases.find((d) => d.name === 'review')!;
      expect(review).toMatchObject({ source: reviewPath, userVersion: REVIEW_MIGRATIONS.length, integrity: 'ok' });
      expect(review.tables.accounts).toBe(2);
      expect(review.sha256).toBe(sha256(join(dir, 'review.sqlite')));

      // a restore: the copy is a results database the ResultStore opens and reads
      const restored = join(work, 'restored/var/results.sqlite');
      mkdirSync(join(work, 'restored/var'), { recursive: true });
      writeFileSync(restored, readFileSync(join(dir, 'results.sqlite')));
      const again = await ResultStore.open({ dbPath: restored, logger: log });
      try { expect(await again.count('run-1')).toBe(copied); } finally { await again.close(); }
    } finally {
      writing = false;
      await writer;
      await store.close();
    }
  });

  it('a missing database or an existing backup folder is a coded error, and leaves nothing behind', async () => {
    const out = join(work, 'errors');
    await expect(backupDatabases({ sources: [{ name: 'results', path: join(work, 'nowhere/results.sqlite') }], outDir: out }))
      .rejects.toMatchObject({ code: 'INSPECTOR_BACKUP_DB_MISSING', message: expect.stringContaining(join(work, 'nowhere/results.sqlite')) });
    expect(existsSync(out)).toBe(false);

    const now = new Date('2026-12-05T10:31:02.123Z');
    const first = await backupDatabases({ sources: [{ name: 'review', path: reviewPath }], outDir: out, now });
    expect(first.dir).toBe(join(out, '2026-12-05T10-31-02Z'));
    await expect(backupDatabases({ sources: [{ name: 'review', path: reviewPath }], outDir: out, now }))
      .rejects.toMatchObject({ code: 'INSPECTOR_BACKUP_OUT_EXISTS' });
    expect(readdirSync(out)).toEqual(['2026-12-05T10-31-02Z']);
    const m = JSON.parse(readFileSync(join(first.dir, 'manifest.json'), 'utf8')) as BackupManifest;
    expect(m.databases.map((d) => d.name)).toEqual(['review']);
  });

  it('CLI: inspector backup --config --out prints the copies; a missing database exits 1 with its code', async () => {
    const config = join(work, 'station.json');
    writeFileSync(config, JSON.stringify({ station: { name: 'cli-station' }, results: { dbPath } }));
    const out = join(work, 'cli-backups');
    const env = { ...process.env, VITEST: '', INSPECTOR_LOG_LEVEL: 'warn' };
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ['bin/inspector.js', 'backup', '--config', config, '--out', out, '--json'], { cwd: root, env, timeout: 120_000 });
    const printed = JSON.parse(stdout) as BackupManifest & { dir: string };
    expect(printed.station).toBe('cli-station');
    expect(printed.databases.map((d) => [d.name, d.source, d.integrity])).toEqual([['results', dbPath, 'ok'], ['review', reviewPath, 'ok']]);
    expect(existsSync(join(printed.dir, 'manifest.json'))).toBe(true);

    writeFileSync(config, JSON.stringify({ results: { dbPath: join(work, 'elsewhere/results.sqlite') } }));
    await expect(run(process.execPath, ['bin/inspector.js', 'backup', '--config', config, '--out', out], { cwd: root, env, timeout: 120_000 }))
      .rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('INSPECTOR_BACKUP_DB_MISSING') });
  }, 240_000); // two CLI processes, each compiling the command line through tsx on 2 shared cores
});
