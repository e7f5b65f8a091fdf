/**
 * The vision server's OPC UA security follows the station's rules for the PLC link: no None
 * endpoint unless configured, SignAndEncrypt, a client certificate used only once an operator
 * trusted it (`trustCertificate` on the server's PKI folder, as `inspector pki trust` does),
 * and user names with passwords (anonymous refused). A real server worker (VisionServerHost)
 * and a real node-opcua client on 127.0.0.1; the station behind it is reduced to its ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, UserTokenType, type UserIdentityInfo,
} from 'node-opcua';
import type BetterSqlite3 from 'better-sqlite3';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { migrate } from '../inspector/results/results-schema.js';
import { storeEntries, trustCertificate } from '../inspector/plc/plc-security.js';
import { VisionServerHost } from '../inspector/vision-server/vision-host.js';
import { sleep, until } from './helpers/wait.js';

const require = createRequire(import.meta.url);
const work = mkdtempSync(join(tmpdir(), 'inspector-vision-sec-'));
const serverPki = join(work, 'pki-vision');

describe('vision server security', () => {
  let host: VisionServerHost;
  let endpoint: string;
  const inspection = { inspecting: true, setInspecting(on: boolean) { this.inspecting = on; } };

  beforeAll(async () => {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(join(work, 'results.sqlite'));
    db.pragma('journal_mode = WAL');
    migrate(db);
    db.close();
    host = await VisionServerHost.start({
      host: '127.0.0.1', port: await freePort(), certificateFolder: serverPki,
      securityModes: ['SignAndEncrypt'], securityPolicies: ['Basic256Sha256'], allowAnonymous: false,
      users: [{ userName: 'mes', password: 's3cret' }],
      resultsDbPath: join(work, 'results.sqlite'), pollMs: 50, station: 'st-sec', runId: 'run-1', isSimulated: true,
    }, { inspection, recipes: { list: async () => [], validate: async () => { throw new Error('unused'); }, promote: async () => { throw new Error('unused'); } }, fault: () => null }, logger);
    endpoint = host.endpoint;
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const client = (): OPCUAClient => OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.SignAndEncrypt, securityPolicy: SecurityPolicy.Basic256Sha256,
    // the test client plays the plant's MES: it accepts the server's certificate; the server must not accept the client's
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: join(work, 'pki-client'), automaticallyAcceptUnknownCertificate: true }),
    connectionStrategy: { maxRetry: 0, initialDelay: 100 }, requestedSessionTimeout: 20_000,
  });

  async function trySession(user: UserIdentityInfo): Promise<string> {
    const c = client();
    try {
      await c.connect(endpoint);
      const s = await c.createSession(user);
      const v = await s.read({ nodeId: 'ns=0;i=2256', attributeId: AttributeIds.Value }); // ServerStatus
      await s.close();
      return v.statusCode.isGood() ? 'ok' : 'read failed';
    } catch (err) {
      return `refused: ${(err as Error).message}`;
    } finally {
      await c.disconnect().catch(() => undefined);
    }
  }
  const mes: UserIdentityInfo = { type: UserTokenType.UserName, userName: 'mes', password: 's3cret' };

  it('offers no None endpoint, only SignAndEncrypt', async () => {
    // GetEndpoints is answered on a None channel (the client's certificate is not trusted yet)
    const c = OPCUAClient.create({ endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
      clientCertificateManager: new OPCUACertificateManager({ rootFolder: join(work, 'pki-discovery') }), connectionStrategy: { maxRetry: 0 } });
    await c.connect(endpoint);
    const eps = await c.getEndpoints();
    await c.disconnect();
    const session = eps.filter((e) => e.securityMode !== MessageSecurityMode.None);
    expect(session.length).toBeGreaterThan(0);
    for (const e of session) expect(e.securityMode).toBe(MessageSecurityMode.SignAndEncrypt);
    // node-opcua keeps a None channel for GetEndpoints only; it has no session user token
    for (const e of eps.filter((x) => x.securityMode === MessageSecurityMode.None)) expect(e.userIdentityTokens ?? []).toEqual([]);
  }, 60_000);

  it('refuses an unknown client certificate (stored in rejected/) until it is trusted; then the user must be valid', async () => {
    expect(await trySession(mes)).toMatch(/^refused/);
    await until(() => storeEntries(serverPki).some((e) => e.status === 'rejected'), 10_000, 'the client certificate in rejected/');
    const rejected = storeEntries(serverPki).filter((e) => e.status === 'rejected');
    expect(rejected.length).toBe(1);
    await trustCertificate(serverPki, rejected[0]!.thumbprint);
    let result = '';
    for (let i = 0; i < 40 && result !== 'ok'; i++) { // the server's certificate manager picks up trusted/ by itself
      result = await trySession(mes);
      if (result !== 'ok') await sleep(500);
    }
    expect(result).toBe('ok');
    expect(await trySession({ type: UserTokenType.UserName, userName: 'mes', password: 'wrong' })).toMatch(/^refused/);
    expect(await trySession({ type: UserTokenType.Anonymous })).toMatch(/^refused/);
  }, 180_000);
});
