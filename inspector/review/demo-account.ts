/**
 * The demo's account: `demo` (admin, so every page can be tried) with a fresh
 * random password on every demo start; the demo prints it. An existing `demo`
 * account gets the new password (audited), other accounts are left alone.
 */
import { openReviewDb } from './review-db.js';
import { Accounts, randomPassword } from './accounts.js';
import { AuditLog } from './audit-log.js';

export async function ensureDemoAccount(reviewDbPath: string, username = 'demo'): Promise<{ username: string; password: string }> {
  const db = openReviewDb(reviewDbPath);
  try {
    const accounts = new Accounts(db);
    const audit = new AuditLog(db);
    const password = randomPassword();
    if (accounts.byName(username)) {
      await accounts.setPassword(username, password);
      audit.record({ actor: 'demo', action: 'user.password-reset', target: `user:${username}`, before: null, after: { name: username } });
    } else {
      await accounts.create(username, password, 'admin');
      audit.record({ actor: 'demo', action: 'user.create', target: `user:${username}`, before: null, after: { name: username, role: 'admin' } });
    }
    return { username, password };
  } finally {
    db.close();
  }
}
