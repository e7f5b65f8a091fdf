/**
 * `inspector users …` / `inspector tokens create` (commander, in-process) and
 * the demo account, on a real review database file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokensCommand, usersCommand } from '../inspector/cli/users-command.js';
import { openReviewDb } from '../inspector/review/review-db.js';
import { Accounts } from '../inspector/review/accounts.js';
import { AuditLog } from '../inspector/review/audit-log.js';
import { ensureDemoAccount } from '../inspector/review/demo-account.js';

let dir: string;
let db: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'inspector-users-')); db = join(dir, 'review.sqlite'); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(make: typeof usersCommand, args: string[]): Promise<string> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out.push(String(s)); return true; });
  try {
    await make().exitOverride().parseAsync([...args, '--review-db', db], { from: 'user' });
  } finally { spy.mockRestore(); }
  return out.join('');
}

const withAccounts = async <T>(fn: (a: Accounts, audit: AuditLog) => Promise<T> | T): Promise<T> => {
  const d = openReviewDb(db);
  try { return await fn(new Accounts(d), new AuditLog(d)); } finally { d.close(); }
};

describe('inspector users / tokens', () => {
  it('create-admin generates and prints a password that works, once', async () => {
    const out = await run(usersCommand, ['create-admin', '--username', 'root']);
    const pw = /with password: (\S+)/.exec(out)?.[1];
    expect(pw).toMatch(/^[A-Za-z0-9_-]{20}$/);
    await withAccounts(async (a, audit) => {
      expect((await a.authenticate('root', pw!))?.role).toBe('admin');
      expect(audit.list({ action: 'user.create', limit: 5 })).toMatchObject([{ actor: 'cli', target: 'user:root' }]);
    });
    await expect(run(usersCommand, ['create-admin', '--username', 'root2'])).rejects.toMatchObject({ code: 'INSPECTOR_ADMIN_EXISTS' });
  });

  it('add creates an account with a role; bad input is a coded error', async () => {
    const out = await run(usersCommand, ['add', '-u', 'quinn', '-r', 'qa']);
    const pw = /with password: (\S+)/.exec(out)![1]!;
    await withAccounts(async (a) => expect((await a.authenticate('quinn', pw))?.role).toBe('qa'));
    await expect(run(usersCommand, ['add', '-u', 'quinn', '-r', 'ml'])).rejects.toMatchObject({ code: 'INSPECTOR_USER_EXISTS' });
    await expect(run(usersCommand, ['add', '-u', 'bad name', '-r', 'ml'])).rejects.toMatchObject({ code: 'INSPECTOR_BAD_REQUEST' });
    expect(await run(usersCommand, ['list'])).toMatch(/root\tadmin[\s\S]*quinn\tqa/);
  });

  it('tokens create prints a token that authenticates as the user; only its hash is stored', async () => {
    const token = (await run(tokensCommand, ['create', '-u', 'quinn', '--name', 'push', '--ttl-days', '2'])).trim();
    expect(token).toMatch(/^insp_/);
    await withAccounts((a) => {
      expect(a.tokenAccount(token)?.username).toBe('quinn');
      expect(a.tokens().map((t) => t.name)).toEqual(['push']);
    });
    await expect(run(tokensCommand, ['create', '-u', 'nobody'])).rejects.toMatchObject({ code: 'INSPECTOR_UNKNOWN_USER' });
  });
});

describe('demo account', () => {
  it('creates demo with a random password, and gives it a new one on the next demo', async () => {
    const first = await ensureDemoAccount(db);
    const second = await ensureDemoAccount(db);
    expect(first.password).not.toBe(second.password);
    await withAccounts(async (a) => {
      expect(await a.authenticate('demo', first.password)).toBeNull();
      expect((await a.authenticate('demo', second.password))?.role).toBe('admin');
    });
  });
});
