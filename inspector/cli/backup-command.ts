/**
 * `inspector backup --out DIR [--config station.json]`: an online backup of the station's
 * SQLite databases (results.sqlite, review.sqlite), safe while the station writes.
 *
 * Each database is copied with SQLite's backup API (better-sqlite3 `db.backup()`) from a
 * read-only connection, in one step: the step reads one consistent snapshot of the WAL
 * database while the station's writers go on (WAL: a reader blocks no writer). A backup in
 * many small steps would restart from scratch at every write the station commits in between,
 * and could never finish on a busy line. The copy is then made a standalone file (journal_mode
 * DELETE: no -wal/-shm beside it) and verified from a fresh read-only connection:
 * `PRAGMA integrity_check` = ok, `user_version` equal to the source's, and the rows of every
 * table counted. `manifest.json` records, per database, the source path, the file, its size and
 * sha256, the schema version, the integrity result and the counts.
 *
 * Everything is written into `DIR/.<timestamp>.partial` and renamed to `DIR/<timestamp>` once
 * every copy verified: a folder named by a timestamp is a complete backup. The folder and its
 * files are the owner's only (0700/0600): the review database holds password and token hashes. Restore: stop the
 * station, copy the files back over var/results.sqlite and var/review.sqlite, remove any
 * results.sqlite-wal / -shm left beside them, start (deploy/UPGRADE.md).
 */
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import createError from '@fastify/error';
import type BetterSqlite3 from 'better-sqlite3';
import { resolveConfig } from '../station/config.js';
import { reviewDbPathFor } from '../review/review-db.js';

const require = createRequire(import.meta.url);

export const BackupDbMissingError = createError<[string, string]>(
  'INSPECTOR_BACKUP_DB_MISSING', 'The %s database %s does not exist (check --config and the working directory: relative paths resolve from it)', 500);
export const BackupOutExistsError = createError<[string]>(
  'INSPECTOR_BACKUP_OUT_EXISTS', 'Backup folder %s already exists', 409);
export const BackupVerifyFailedError = createError<[string, string]>(
  'INSPECTOR_BACKUP_VERIFY_FAILED', 'The backup of %s does not verify: %s', 500);
export const BackupWrongUserError = createError<[string, number]>(
  'INSPECTOR_BACKUP_WRONG_USER',
  'Run the backup as the owner of %s (uid %d, e.g. sudo -u inspector): as root it could leave root-owned -wal/-shm files the station cannot open', 500);

export interface BackupSource {
  /** the name in the manifest and the copy's file name: `<name>.sqlite` */
  name: string;
  path: string;
}

export interface BackupEntry {
  name: string;
  /** the database backed up (absolute) */
  source: string;
  /** the copy, relative to the backup folder */
  file: string;
  bytes: number;
  sha256: string;
  /** PRAGMA user_version: the schema migrations applied (equal in the source and the copy) */
  userVersion: number;
  integrity: 'ok';
  /** rows per table of the copy */
  tables: Record<string, number>;
}

export interface BackupManifest {
  format: 1;
  createdAt: string;
  host: string;
  station: string | null;
  config: string | null;
  inspectorVersion: string;
  /** the checkout's commit when it is a git checkout the user may read, else null */
  commit: string | null;
  sqliteVersion: string;
  databases: BackupEntry[];
}

export interface BackupOptions {
  sources: BackupSource[];
  /** the backup lands in `<outDir>/<timestamp>/` */
  outDir: string;
  now?: Date;
  station?: string | null;
  config?: string | null;
}

/** 2026-12-05T10:31:02.123Z → 2026-12-05T10-31-02Z (sortable, no colons) */
export function backupStamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
}

const ALL_PAGES = 0x7fffffff;

function openDb(path: string, readonly: boolean): BetterSqlite3.Database {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  return new Database(path, { readonly, fileMustExist: true, timeout: 10_000 });
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function tableCounts(db: BetterSqlite3.Database): Record<string, number> {
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  const counts: Record<string, number> = {};
  for (const t of names) counts[t] = db.prepare(`SELECT COUNT(*) FROM "${t.replaceAll('"', '""')}"`).pluck().get() as number;
  return counts;
}

/** Copy one database (one consistent snapshot) and verify the copy. */
async function backupOne(src: BackupSource, dir: string): Promise<BackupEntry> {
  const source = resolve(src.path);
  const file = `${src.name}.sqlite`;
  const dest = join(dir, file);
  const db = openDb(source, true);
  let sourceVersion: number;
  try {
    sourceVersion = db.pragma('user_version', { simple: true }) as number;
    // the first step only sizes the copy; the second copies every page in one go (see the header)
    await db.backup(dest, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
  // a standalone file: the copy keeps the source's WAL flag, which would put -wal/-shm files beside it
  const rw = openDb(dest, false);
  try { rw.pragma('journal_mode = DELETE'); } finally { rw.close(); }
  chmodSync(dest, 0o600);

  const copy = openDb(dest, true);
  let userVersion: number;
  let tables: Record<string, number>;
  try {
    const check = (copy.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    if (check.length !== 1 || check[0] !== 'ok') throw new BackupVerifyFailedError(source, `integrity_check: ${check.slice(0, 5).join('; ')}`);
    userVersion = copy.pragma('user_version', { simple: true }) as number;
    if (userVersion !== sourceVersion) throw new BackupVerifyFailedError(source, `user_version ${userVersion}, the source has ${sourceVersion}`);
    tables = tableCounts(copy);
  } finally {
    copy.close();
  }
  return { name: src.name, source, file, bytes: statSync(dest).size, sha256: await sha256Of(dest), userVersion, integrity: 'ok', tables };
}

function inspectorVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch { return 'unknown'; }
}

function checkoutCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
      .toString().trim() || null;
  } catch { return null; }
}

/**
 * Back up the databases into `<outDir>/<timestamp>/` and verify every copy. Throws a coded error
 * (INSPECTOR_BACKUP_*) for a missing database, an existing backup folder, a copy that does not
 * verify; nothing is left behind then.
 */
export async function backupDatabases(opts: BackupOptions): Promise<{ dir: string; manifest: BackupManifest }> {
  for (const s of opts.sources) {
    const path = resolve(s.path);
    if (!existsSync(path)) throw new BackupDbMissingError(s.name, path);
    const owner = statSync(path).uid;
    if (process.getuid?.() === 0 && owner !== 0) throw new BackupWrongUserError(path, owner);
  }
  const now = opts.now ?? new Date();
  const stamp = backupStamp(now);
  const outDir = resolve(opts.outDir);
  const dir = join(outDir, stamp);
  const partial = join(outDir, `.${stamp}.partial`);
  if (existsSync(dir)) throw new BackupOutExistsError(dir);
  mkdirSync(outDir, { recursive: true });
  try {
    // not recursive: a second backup of the same second fails here. Owner only: the review
    // database holds password and token hashes
    mkdirSync(partial, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupOutExistsError(partial);
    throw err;
  }
  try {
    const databases: BackupEntry[] = [];
    for (const s of opts.sources) databases.push(await backupOne(s, partial));
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const mem = new Database(':memory:');
    const sqliteVersion = mem.prepare('SELECT sqlite_version()').pluck().get() as string;
    mem.close();
    const manifest: BackupManifest = {
      format: 1, createdAt: now.toISOString(), host: hostname(), station: opts.station ?? null,
      config: opts.config ? resolve(opts.config) : null, inspectorVersion: inspectorVersion(), commit: checkoutCommit(),
      sqliteVersion, databases,
    };
    writeFileSync(join(partial, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    if (existsSync(dir)) throw new BackupOutExistsError(dir);
    renameSync(partial, dir);
    return { dir, manifest };
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
}

interface BackupFlags { out: string; config?: string; db?: string; reviewDb?: string; review: boolean; json?: boolean }

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}

export function backupCommand(): Command {
  return new Command('backup')
    .description('online backup of the results and review databases (safe while the station runs), verified, with a manifest')
    .requiredOption('--out <dir>', 'backup root: the backup is written to <dir>/<timestamp>/')
    .option('--config <file>', 'station config JSON (results.dbPath; relative paths resolve from the working directory)')
    .option('--db <file>', 'results database (default: results.dbPath)')
    .option('--review-db <file>', 'review database (default: review.sqlite next to the results database)')
    .option('--no-review', 'results database only (a station run without its server has no review database)')
    .option('--json', 'print the manifest as JSON')
    .action(async (o: BackupFlags) => {
      const config = resolveConfig({}, o.config);
      const dbPath = o.db ?? config.results.dbPath;
      const sources: BackupSource[] = [{ name: 'results', path: dbPath }];
      if (o.review) sources.push({ name: 'review', path: o.reviewDb ?? reviewDbPathFor(dbPath) });
      const { dir, manifest } = await backupDatabases({ sources, outDir: o.out, station: config.station.name, config: o.config ?? null });
      if (o.json) { process.stdout.write(`${JSON.stringify({ dir, ...manifest }, null, 2)}\n`); return; }
      const lines = [`backup: ${dir}`];
      for (const d of manifest.databases) {
        lines.push(`  ${d.name}: ${d.source} -> ${d.file} (${human(d.bytes)}, user_version ${d.userVersion}, integrity ${d.integrity}, sha256 ${d.sha256.slice(0, 16)}…)`);
        for (const [t, n] of Object.entries(d.tables)) lines.push(`    ${t.padEnd(24)} ${n}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
