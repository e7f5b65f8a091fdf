/**
 * `app.audit.record({ actor, action, target, before, after })`: the one way to
 * write the audit trail. Every label change, model action and setting change
 * goes through it. Synchronous (better-sqlite3), so a route can record inside
 * the same transaction as its change (`app.review.db.transaction`).
 */
import fp from 'fastify-plugin';
import type { AuditEntry, AuditLog } from '../../review/audit-log.js';

export interface AuditApi {
  /** Append one entry (who, what, which target, state before and after); returns its id. */
  record(entry: AuditEntry): number;
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditApi;
  }
}

export const auditPlugin = fp<{ log: AuditLog }>(async (app, opts) => {
  app.decorate('audit', { record: (e: AuditEntry) => opts.log.record(e) });
}, { name: 'inspector-audit' });
