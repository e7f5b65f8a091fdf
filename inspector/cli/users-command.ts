/**
 * Accounts from the command line, straight on the review database (no server
 * needed):
 *   inspector users create-admin --username U [--password-stdin]   first run: the first admin
 *   inspector users add --username U --role qa [--password-stdin]
 *   inspector users list
 *   inspector tokens create --username U [--name N] [--ttl-days D]  prints a bearer token once
 *                                    (it expires after D days: default 90, at most 365)
 *   inspector tokens list [--username U]                            id, user, name, expiry, state
 *   inspector tokens revoke --id N                                  the token stops working at once
 * Without --password-stdin a random password is generated and printed.
 * The database is the one next to the configured results database
 * (`--config station.json`), or `--review-db PATH`.
 */
import { Command, Option } from 'commander';
import createError from '@fastify/error';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../station/config.js';
import { fingerprintOf, tlsDirFor } from '../server/tls.js';
import { openReviewDb, reviewDbPathFor, ROLES, type Role } from '../review/review-db.js';
import { Accounts, DAY_MS, DEFAULT_TOKEN_TTL_DAYS, MAX_TOKEN_TTL_DAYS, randomPassword } from '../review/accounts.js';
import { AuditLog } from '../review/audit-log.js';

const AdminExistsError = createError<[string]>('INSPECTOR_ADMIN_EXISTS', 'An admin already exists (%s): use `inspector users add --role admin`', 409);
const UnknownUserError = createError<[string]>('INSPECTOR_UNKNOWN_USER', 'No user %s', 404);
const UnknownTokenError = createError<[string]>('INSPECTOR_UNKNOWN_TOKEN', 'No live token with id %s', 404);
const BadTtlError = createError<[string]>('INSPECTOR_BAD_REQUEST', '--ttl-days %s: give a whole number of days from 1 to ' + MAX_TOKEN_TTL_DAYS, 400);

interface DbOpts { config?: string; reviewDb?: string }

/** How to use a new token against this station over HTTPS: its certificate's fingerprint, read from the station's own file. */
function stationPinHint(configFile: string | undefined): string {
  const config = resolveConfig({}, configFile);
  const certFile = join(tlsDirFor(config.server.tls, config.plc.certificateFolder), 'cert.pem');
  const fp = config.server.tls.mode === 'self-signed' && existsSync(certFile) ? fingerprintOf(readFileSync(certFile)) : null;
  const url = `https://${config.server.host === '0.0.0.0' ? 'STATION' : config.server.host}:${config.server.port}`;
  return fp ? `use it: INSPECTOR_TOKEN=<token> inspector models list --url ${url} --fingerprint ${fp}\n`
    : `use it: INSPECTOR_TOKEN=<token> inspector models list --url ${url} (with --fingerprint or --ca for the station's certificate)\n`;
}

function withDb<T>(o: DbOpts, fn: (accounts: Accounts, audit: AuditLog) => Promise<T>): Promise<T> {
  const path = o.reviewDb ?? reviewDbPathFor(resolveConfig({}, o.config).results.dbPath);
  const db = openReviewDb(path);
  return fn(new Accounts(db), new AuditLog(db)).finally(() => db.close());
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const dbOptions = (c: Command): Command => c
  .option('-c, --config <file>', 'station config: its review database (next to results.dbPath)')
  .option('--review-db <path>', 'review database file (overrides --config)');

async function createUser(o: DbOpts & { username: string; passwordStdin?: boolean }, role: Role, firstAdmin: boolean): Promise<void> {
  const password = o.passwordStdin ? await readStdin() : randomPassword();
  await withDb(o, async (accounts, audit) => {
    if (firstAdmin) {
      const admins = accounts.list().filter((a) => a.role === 'admin');
      if (admins.length) throw new AdminExistsError(admins.map((a) => a.username).join(', '));
    }
    const a = await accounts.create(o.username, password, role);
    audit.record({ actor: 'cli', action: 'user.create', target: `user:${a.username}`, before: null, after: { name: a.username, role } });
  });
  process.stdout.write(o.passwordStdin ? `created ${role} ${o.username}\n` : `created ${role} ${o.username} with password: ${password}\n`);
}

export function usersCommand(): Command {
  const users = new Command('users').description('manage accounts (operator, qa, ml, admin)');
  users.addCommand(dbOptions(new Command('create-admin'))
    .description('first run: create the first admin account')
    .requiredOption('-u, --username <name>', 'user name')
    .option('--password-stdin', 'read the password from stdin (default: generate and print one)')
    .action((o: DbOpts & { username: string; passwordStdin?: boolean }) => createUser(o, 'admin', true)));
  users.addCommand(dbOptions(new Command('add'))
    .description('create an account')
    .requiredOption('-u, --username <name>', 'user name')
    .addOption(new Option('-r, --role <role>', 'role').choices([...ROLES]).makeOptionMandatory())
    .option('--password-stdin', 'read the password from stdin (default: generate and print one)')
    .action((o: DbOpts & { username: string; role: Role; passwordStdin?: boolean }) => createUser(o, o.role, false)));
  users.addCommand(dbOptions(new Command('list'))
    .description('list accounts')
    .action((o: DbOpts) => withDb(o, async (accounts) => {
      for (const a of accounts.list()) process.stdout.write(`${a.username}\t${a.role}\t${new Date(a.createdAtMs).toISOString()}${a.disabled ? '\tdisabled' : ''}\n`);
    })));
  return users;
}

export function tokensCommand(): Command {
  const tokens = new Command('tokens').description('bearer tokens for the CLI and the ML team');
  tokens.addCommand(dbOptions(new Command('create'))
    .description('create a bearer token for a user; it is printed once (only its hash is stored)')
    .requiredOption('-u, --username <name>', 'whose token')
    .option('-n, --name <label>', 'what the token is for', 'cli')
    .option('--ttl-days <d>', `expire after this many days (1 to ${MAX_TOKEN_TTL_DAYS})`, String(DEFAULT_TOKEN_TTL_DAYS))
    .action((o: DbOpts & { username: string; name: string; ttlDays: string }) => withDb(o, async (accounts, audit) => {
      const days = Number(o.ttlDays);
      if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_TTL_DAYS) throw new BadTtlError(o.ttlDays);
      const a = accounts.byName(o.username);
      if (!a) throw new UnknownUserError(o.username);
      const t = accounts.createToken(a.id, o.name, days * DAY_MS);
      audit.record({ actor: 'cli', action: 'token.create', target: `user:${a.username}`, before: null, after: { tokenId: t.id, name: o.name, expiresAtMs: t.expiresAtMs } });
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(stationPinHint(o.config)); // stdout stays the token alone (scripts capture it)
    })));
  tokens.addCommand(dbOptions(new Command('list'))
    .description('list bearer tokens (never their secrets): id, user, name, expiry, state')
    .option('-u, --username <name>', 'only this user\'s tokens')
    .action((o: DbOpts & { username?: string }) => withDb(o, async (accounts) => {
      let id: number | undefined;
      if (o.username) {
        const a = accounts.byName(o.username);
        if (!a) throw new UnknownUserError(o.username);
        id = a.id;
      }
      const now = Date.now();
      for (const t of accounts.tokens(id)) {
        const state = t.revokedAtMs !== null ? 'revoked' : t.expiresAtMs === null || t.expiresAtMs <= now ? 'expired' : 'live';
        process.stdout.write(`${t.id}\t${t.username}\t${t.name}\t${t.expiresAtMs === null ? '-' : new Date(t.expiresAtMs).toISOString()}\t${state}\n`);
      }
    })));
  tokens.addCommand(dbOptions(new Command('revoke'))
    .description('revoke a bearer token (see `tokens list` for ids); it stops working at once')
    .requiredOption('--id <n>', 'the token id')
    .action((o: DbOpts & { id: string }) => withDb(o, async (accounts, audit) => {
      const id = Number(o.id);
      const t = Number.isInteger(id) ? accounts.tokens().find((x) => x.id === id) : undefined;
      if (!t || !accounts.revokeToken(t.id)) throw new UnknownTokenError(o.id);
      audit.record({ actor: 'cli', action: 'token.revoke', target: `user:${t.username}`, before: { tokenId: t.id, name: t.name, revoked: false }, after: { tokenId: t.id, revoked: true } });
      process.stdout.write(`revoked token ${t.id} (${t.username}: ${t.name})\n`);
    })));
  return tokens;
}

/** Everything this file adds to `inspector` (one line in main.ts). */
export const accountCommands = (): Command[] => [usersCommand(), tokensCommand()];
