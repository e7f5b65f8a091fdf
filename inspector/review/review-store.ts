/**
 * Everything the server keeps about reviews, in one object: the review
 * database and its parts (accounts, audit, labels, reviewed state), plus the
 * read-only query connection that joins them with the results database.
 */
import type { Db } from './review-db.js';
import { openReviewDb } from './review-db.js';
import { Accounts } from './accounts.js';
import { AuditLog } from './audit-log.js';
import { Labels } from './labels.js';
import { ReviewQueries } from './review-queries.js';

export interface ReviewStoreOptions {
  /** review database file, or ':memory:' */
  reviewDbPath: string;
  /** results database written by the store worker (opened read-only); absent: queries answer 503 */
  resultsDbPath?: string;
}

export class ReviewStore {
  readonly db: Db;
  readonly accounts: Accounts;
  readonly audit: AuditLog;
  readonly labels: Labels;
  readonly queries: ReviewQueries;

  constructor(readonly opts: ReviewStoreOptions) {
    this.db = openReviewDb(opts.reviewDbPath);
    this.accounts = new Accounts(this.db);
    this.audit = new AuditLog(this.db);
    this.labels = new Labels(this.db, this.audit);
    this.queries = new ReviewQueries(opts.resultsDbPath, opts.reviewDbPath);
  }

  close(): void {
    this.queries.close();
    this.db.close();
  }
}
