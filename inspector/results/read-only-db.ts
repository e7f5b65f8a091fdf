/**
 * openReadOnly(): the connection of the readers beside the store worker (the HTTP
 * server worker, the MQTT and vision-server tails, retention, export) to the results
 * database. It has nothing to do with the main-thread writer (ResultStore), so it
 * lives in its own file; result-store.ts re-exports it for the importers that take
 * it from there.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);

/**
 * A read-only connection to the results database (for the HTTP server worker).
 * WAL lets it read while the store worker writes; it sees committed batches.
 */
export function openReadOnly(dbPath: string): BetterSqlite3.Database {
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}
