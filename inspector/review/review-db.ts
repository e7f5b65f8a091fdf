/**
 * The review database (`var/review.sqlite`): accounts, sessions, bearer tokens
 * (each with an expiry), failed-login counters (per-account lockout),
 * labels with their append-only revision history, per-reviewer reviewed state
 * and the audit trail. Its own SQLite file, next to the results database the
 * store worker writes; migrations are data, applied through `user_version`.
 *
 * History is enforced by the schema, not by convention: `audit` and
 * `label_revisions` refuse UPDATE and DELETE (triggers), and a row of `labels`
 * (the current label) can only be inserted or changed when the revision row it
 * names already exists in `label_revisions`.
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);

export type Db = BetterSqlite3.Database;

export const ROLES = ['operator', 'qa', 'ml', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** MIGRATIONS[i] takes user_version from i to i+1. */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('operator','qa','ml','admin')),
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    last_used_ms INTEGER,
    revoked_at_ms INTEGER
  );
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
  );
  CREATE INDEX audit_at ON audit(at_ms);
  CREATE INDEX audit_target ON audit(target);
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

  CREATE TABLE label_revisions (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('true_defect','false_reject','unsure')),
    defect_class TEXT,
    regions_json TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    UNIQUE (run_id, seq, revision)
  );
  CREATE TRIGGER label_revisions_no_update BEFORE UPDATE ON label_revisions BEGIN SELECT RAISE(ABORT, 'label history is append-only'); END;
  CREATE TRIGGER label_revisions_no_delete BEFORE DELETE ON label_revisions BEGIN SELECT RAISE(ABORT, 'label history is append-only'); END;
  CREATE TABLE labels (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    defect_class TEXT,
    regions_json TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
  );
  CREATE INDEX labels_at ON labels(at_ms);
  CREATE TRIGGER labels_insert_needs_history BEFORE INSERT ON labels
    WHEN NOT EXISTS (SELECT 1 FROM label_revisions r WHERE r.run_id = NEW.run_id AND r.seq = NEW.seq AND r.revision = NEW.revision)
    BEGIN SELECT RAISE(ABORT, 'a label needs its history row first'); END;
  CREATE TRIGGER labels_update_needs_history BEFORE UPDATE ON labels
    WHEN NEW.revision <= OLD.revision OR NOT EXISTS (SELECT 1 FROM label_revisions r WHERE r.run_id = NEW.run_id AND r.seq = NEW.seq AND r.revision = NEW.revision)
    BEGIN SELECT RAISE(ABORT, 'a label changes only with a new history row'); END;
  CREATE TRIGGER labels_no_delete BEFORE DELETE ON labels BEGIN SELECT RAISE(ABORT, 'labels are never deleted'); END;

  CREATE TABLE reviewed (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reviewer TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq, reviewer)
  );
  `,
  // 1 → 2: per-account login lockout, and every bearer token expires (tokens made before this
  // migration without an expiry get 90 days from the migration, so nobody is locked out at once)
  `
  CREATE TABLE login_failures (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    failures INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX login_failures_last ON login_failures(last_failure_ms);
  UPDATE tokens SET expires_at_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 7776000000 WHERE expires_at_ms IS NULL;
  `,
];

function migrate(db: Db): number {
  let v = db.pragma('user_version', { simple: true }) as number;
  if (v > MIGRATIONS.length) throw new Error(`review database is newer (user_version ${v}) than this code (${MIGRATIONS.length})`);
  while (v < MIGRATIONS.length) {
    const sql = MIGRATIONS[v]!;
    const next = v + 1;
    db.transaction(() => { db.exec(sql); db.pragma(`user_version = ${next}`); })();
    v = next;
  }
  return v;
}

/** Open (create, migrate) the review database. `':memory:'` gives a private throwaway one. */
export function openReviewDb(path: string): Db {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  const db = new Database(path);
  if (path !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

/** The review database that belongs next to a results database: `var/results.sqlite` → `var/review.sqlite`. */
export function reviewDbPathFor(resultsDbPath: string): string {
  return resolve(dirname(resolve(resultsDbPath)), 'review.sqlite');
}
