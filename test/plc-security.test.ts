/**
 * OPC UA security of the PLC link, for real: PLC simulators (node-opcua servers)
 * and PlcLinks on 127.0.0.1, each link with its own PKI folder in a temp dir.
 * Trust goes through the code the `inspector pki` command runs (plc-security.ts
 * trustCertificate / rejectCertificate on the folder), never automatically.
 *
 *   S1: every mode (None, Sign, SignAndEncrypt) × policy, anonymous allowed, one user
 *   S2: Sign only (Aes128_Sha256_RsaOaep, Basic256Sha256), no anonymous, one user,
 *       client certificates trusted explicitly
 *   S3: None only
 * (S2 and S3 reuse S1's server certificate: key generation takes seconds.)
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { OPCUACertificateManager, OPCUAClient } from 'node-opcua';
import { freePort } from '../inspector/core/free-port.js';
import { defaultPlcNodeIds } from '../inspector/plc/plc-contract.js';
import { PlcLink, type PlcLinkState } from '../inspector/plc/plc-link.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { PLC_NAMESPACE_URI } from '../inspector/plc/plc-contract.js';
import { CLIENT_APPLICATION_NAME } from '../inspector/plc/plc-connection.js';
import {
  certificateInfo, rejectCertificate, resolveSecurity, storeEntries, trustCertificate,
  type PlcSecurityConfig, type PlcUserConfig,
} from '../inspector/plc/plc-security.js';
import { Alarm, Alarms } from '../inspector/station/alarms.js';
import { pkiCommand } from '../inspector/cli/pki-command.js';
import { plcSecurityText, watchPlcLink } from '../inspector/station/health.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Every log line of the links and simulators (level trace), to look for secrets. */
const logLines: string[] = [];
const log = pino({ level: 'trace' }, { write: (s: string) => { logLines.push(s); } });

const PASSWORD = 'pw-Correct-7f3a91';
const WRONG_PASSWORD = 'pw-Wrong-c2e80d';
const work = mkdtempSync(join(tmpdir(), 'plc-security-test-'));
let s1: PlcSimulator;
let s2: PlcSimulator;
let s3: PlcSimulator;
let simThumbprint: string;
/** a station application certificate made once, copied into folders where a fresh one is not the point */
const template = join(work, 'station-template');
const links: PlcLink[] = [];

function stationFolder(name: string, fromTemplate = true): string {
  const folder = join(work, name);
  if (fromTemplate) cpSync(join(template, 'own'), join(folder, 'own'), { recursive: true });
  return folder;
}

/** A link that records every state it went through. */
function makeLink(sim: PlcSimulator, folder: string, security: PlcSecurityConfig, user?: PlcUserConfig): { link: PlcLink; states: PlcLinkState[] } {
  const link = new PlcLink({ endpoint: sim.endpoint, nodeIds: defaultPlcNodeIds, heartbeatMs: 200, certificateFolder: folder,
    reconnect: { initialDelayMs: 100, maxDelayMs: 400 }, connectTimeoutMs: 15_000, logger: log, security, ...(user ? { user } : {}) });
  const states: PlcLinkState[] = [];
  link.on('state', (s: PlcLinkState) => states.push(s));
  links.push(link);
  return { link, states };
}

/** n parts through the photo-eye, one result each (even: accept; odd: reject with code 3); their outcomes at the PLC. */
async function writeParts(sim: PlcSimulator, link: PlcLink, n: number): Promise<{ ids: number[]; outcomes: string[] }> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = sim.partArrived();
    ids.push(id);
    await link.writeResult(id, sim.epoch, i % 2 === 0, i % 2 === 0 ? 0 : 3, 0.25);
  }
  await until(() => ids.every((id) => sim.outcomes().has(id)), 10_000, 'outcomes of the written parts');
  const o = sim.outcomes();
  return { ids, outcomes: ids.map((id) => o.get(id)!.outcome) };
}
const expectedOutcomes = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 'accepted' : 'rejected'));

beforeAll(async () => {
  s1 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc1'), logger: log,
    security: { users: [{ userName: 'operator', password: PASSWORD }] } });
  await s1.start();
  simThumbprint = certificateInfo(readFileSync(s1.certificateFile)).thumbprint;
  for (const n of ['plc2', 'plc3']) cpSync(join(work, 'plc1', 'server', 'own'), join(work, n, 'server', 'own'), { recursive: true });
  s2 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc2'), logger: log,
    security: { modes: ['Sign'], policies: ['Aes128_Sha256_RsaOaep', 'Basic256Sha256'], allowAnonymous: false,
      users: [{ userName: 'operator', password: PASSWORD }], autoAcceptClientCertificates: false } });
  s3 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc3'), logger: log,
    security: { modes: ['None'] } });
  // the station's application certificate, once (what PlcLink.start() makes in a fresh folder)
  const cm = new OPCUACertificateManager({ rootFolder: template, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true });
  await cm.initialize();
  await Promise.all([s2.start(), s3.start(),
    OPCUAClient.create({ applicationName: CLIENT_APPLICATION_NAME, clientCertificateManager: cm }).createDefaultCertificate()]);
  await cm.dispose();
}, 180_000);

afterAll(async () => {
  for (const l of links) await l.stop().catch(() => undefined);
  for (const s of [s1, s2, s3]) await s?.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('SignAndEncrypt with the PLC certificate trusted explicitly', () => {
  it('refuses the unknown PLC, connects once it is trusted through the pki code path, and the PLC applies the results', async () => {
    const folder = stationFolder('a-station', false); // a fresh folder: the station makes its certificate at the first start
    expect(existsSync(join(folder, 'own'))).toBe(false);
    const { link, states } = makeLink(s1, folder, { mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' });
    await link.start();
    expect(link.certificateThumbprint).toMatch(/^[0-9a-f]{40}$/);
    expect(storeEntries(folder).find((e) => e.status === 'own')?.thumbprint).toBe(link.certificateThumbprint);
    // first attempt: the PLC's certificate is unknown → refused, stored in rejected/
    expect(link.state).not.toBe('connected');
    expect(link.lastErrorCode).toBe('INSPECTOR_PLC_SECURITY');
    expect(link.lastError).toContain(simThumbprint);
    expect(storeEntries(folder).filter((e) => e.status === 'rejected').map((e) => e.thumbprint)).toEqual([simThumbprint]);
    expect(states).not.toContain('connected');

    // `inspector pki trust <thumbprint prefix>` on the station's folder while the link retries
    const trusted = await trustCertificate(folder, simThumbprint.slice(0, 12));
    expect(trusted).toMatchObject({ status: 'trusted', thumbprint: simThumbprint });
    await until(() => link.state === 'connected', 30_000, 'the link to connect after trust');
    expect(link.security).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' });

    const { outcomes } = await writeParts(s1, link, 10);
    expect(outcomes).toEqual(expectedOutcomes(10));
    // what the PLC saw on the channel the results came over
    expect(s1.lastWrite).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss', user: 'anonymous' });
    const first = link.certificateThumbprint;
    await link.stop();

    // the application certificate and the trust persist: another policy connects at its first attempt
    const second = makeLink(s1, folder, { mode: 'SignAndEncrypt', policy: 'Aes128_Sha256_RsaOaep' });
    await second.link.start();
    expect(second.link.state).toBe('connected');
    expect(second.states).toEqual(['connecting', 'connected']);
    expect(second.link.certificateThumbprint).toBe(first);
    expect(second.link.security).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes128_Sha256_RsaOaep' });
    const again = await writeParts(s1, second.link, 6);
    expect(again.outcomes).toEqual(expectedOutcomes(6));
    expect(s1.lastWrite).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes128_Sha256_RsaOaep', user: 'anonymous' });
    await second.link.stop();
  }, 120_000);
});

describe('untrusted or rejected PLC certificate', () => {
  it('an untrusted certificate is refused at every attempt with a coded error that says why; never connected; PLC_LINK_DOWN says it', async () => {
    const folder = stationFolder('b-station');
    const { link, states } = makeLink(s1, folder, { mode: 'SignAndEncrypt' });
    const alarms = new Alarms(log, () => undefined);
    watchPlcLink(link, alarms, s1.endpoint);
    await link.start();
    await until(() => link.securityErrors >= 3, 30_000, 'three refused attempts');
    expect(states).not.toContain('connected');
    expect(link.state).not.toBe('connected');
    expect(link.lastErrorCode).toBe('INSPECTOR_PLC_SECURITY');
    expect(link.lastError).toMatch(new RegExp(`^INSPECTOR_PLC_SECURITY: .*certificate ${simThumbprint} .*is not trusted.*inspector pki trust ${simThumbprint}`));
    expect(alarms.isRaised(Alarm.PLC_LINK_DOWN)).toBe(true);
    expect(alarms.list().join('\n')).toMatch(new RegExp(`PLC_LINK_DOWN: link \\w+ \\(${s1.endpoint.replace(/\./g, '\\.')}\\): INSPECTOR_PLC_SECURITY: .*not trusted`));
    await expect(link.writeResult(s1.partArrived(), s1.epoch, true, 0, 0)).rejects.toMatchObject({ code: 'INSPECTOR_PLC_WRITE' });
    await link.stop();
  }, 60_000);

  it('an expired certificate is refused as expired even when trusted', async () => {
    // a PLC whose certificate ran out a year ago (node-opcua serves it; the station must not accept it)
    const folder = join(work, 'plc4', 'server');
    const cm = new OPCUACertificateManager({ rootFolder: folder, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
    await cm.initialize();
    await cm.createSelfSignedCertificate({ applicationUri: PLC_NAMESPACE_URI, subject: '/CN=expired PLC', dns: ['127.0.0.1'],
      startDate: new Date(Date.now() - 2 * 365 * 86_400_000), validity: 365, outputFile: join(folder, 'own', 'certs', 'certificate.pem') });
    await cm.dispose();
    const s4 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc4'), logger: log });
    await s4.start();
    try {
      const expired = certificateInfo(readFileSync(s4.certificateFile));
      expect(expired.notAfter.getTime()).toBeLessThan(Date.now());
      const station = stationFolder('b4-station');
      await trustCertificate(station, s4.certificateFile);
      const { link, states } = makeLink(s4, station, {});
      await link.start();
      await until(() => link.securityErrors >= 2, 30_000, 'two refused attempts');
      expect(states).not.toContain('connected');
      expect(link.lastError).toMatch(new RegExp(`INSPECTOR_PLC_SECURITY: .*certificate ${expired.thumbprint} .*is expired on ${expired.notAfter.toISOString().slice(0, 10)}`));
      await link.stop();
    } finally {
      await s4.stop();
    }
  }, 90_000);

  it('a rejected certificate (`pki reject`) is refused as rejected, even after it was trusted', async () => {
    const folder = stationFolder('b2-station');
    await trustCertificate(folder, s1.certificateFile); // `inspector pki trust FILE`
    const rejected = await rejectCertificate(folder, simThumbprint);
    expect(rejected).toMatchObject({ status: 'rejected', thumbprint: simThumbprint });
    const { link, states } = makeLink(s1, folder, { mode: 'auto' });
    await link.start();
    await until(() => link.securityErrors >= 2, 30_000, 'two refused attempts');
    expect(states).not.toContain('connected');
    expect(link.lastError).toMatch(/INSPECTOR_PLC_SECURITY: .*is rejected in/);
    await link.stop();
  }, 60_000);

  it('the PLC refusing the station\'s certificate is a coded error naming it; trusted on the PLC side, the link connects', async () => {
    const folder = stationFolder('b3-station');
    await trustCertificate(folder, s2.certificateFile);
    const { link, states } = makeLink(s2, folder, { mode: 'auto' }, { userName: 'operator', password: PASSWORD });
    await link.start();
    await until(() => link.securityErrors >= 1, 30_000, 'a refused attempt');
    expect(states).not.toContain('connected');
    expect(link.lastError).toMatch(new RegExp(`INSPECTOR_PLC_SECURITY: .*the PLC refused the station's certificate ${link.certificateThumbprint}`));
    // on the PLC: `inspector pki trust --folder <simulator>/server <station thumbprint>` (it landed in the PLC's rejected/)
    expect(storeEntries(s2.serverPkiFolder).some((e) => e.status === 'rejected' && e.thumbprint === link.certificateThumbprint)).toBe(true);
    await trustCertificate(s2.serverPkiFolder, link.certificateThumbprint!);
    await until(() => link.state === 'connected', 60_000, 'the link to connect once the PLC trusts the station');
    // auto on a PLC offering Sign with Aes128_Sha256_RsaOaep and Basic256Sha256: the most secure of those
    expect(link.security).toEqual({ mode: 'Sign', policy: 'Basic256Sha256' });
    const { outcomes } = await writeParts(s2, link, 4);
    expect(outcomes).toEqual(expectedOutcomes(4));
    expect(s2.lastWrite).toEqual({ mode: 'Sign', policy: 'Basic256Sha256', user: 'operator' });
    await link.stop();
  }, 120_000);
});

describe('auto mode and policy mismatch', () => {
  it('auto picks the most secure endpoint the PLC offers', async () => {
    const folder = stationFolder('c-station');
    await trustCertificate(folder, s1.certificateFile);
    const { link } = makeLink(s1, folder, {});
    expect(link.securityConfig).toEqual({ mode: 'auto', policy: 'auto' });
    await link.start();
    expect(link.state).toBe('connected');
    expect(link.security).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' });
    await writeParts(s1, link, 2);
    expect(s1.lastWrite).toMatchObject({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' });
    // a policy pinned with mode auto: the most secure mode for it
    await link.stop();
    const pinned = makeLink(s1, folder, { policy: 'Basic256Sha256' });
    await pinned.link.start();
    expect(pinned.link.security).toEqual({ mode: 'SignAndEncrypt', policy: 'Basic256Sha256' });
    await pinned.link.stop();
  }, 60_000);

  it('a configured policy the PLC does not offer is a coded error listing what it offers', async () => {
    const folder = stationFolder('c2-station');
    await trustCertificate(folder, s2.certificateFile);
    const { link, states } = makeLink(s2, folder, { mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' },
      { userName: 'operator', password: PASSWORD });
    await link.start();
    expect(states).not.toContain('connected');
    expect(link.lastErrorCode).toBe('INSPECTOR_PLC_SECURITY');
    expect(link.lastError).toMatch(/does not offer security SignAndEncrypt\/Aes256_Sha256_RsaPss \(offered: .*Sign\/Aes128_Sha256_RsaOaep.*Sign\/Basic256Sha256/);
    await link.stop();
  }, 60_000);
});

describe('security None only when configured', () => {
  it('mode None connects unsecured, and the link and health say so', async () => {
    const folder = stationFolder('d-station');
    const { link } = makeLink(s1, folder, { mode: 'None' });
    await link.start();
    expect(link.state).toBe('connected');
    expect(link.security).toEqual({ mode: 'None', policy: 'None' });
    expect(plcSecurityText(link)).toBe('security None (configured: unsigned, unencrypted)');
    await writeParts(s1, link, 2);
    expect(s1.lastWrite).toMatchObject({ mode: 'None', policy: 'None' });
    await link.stop();
    // the same PLC, auto: never None
    await trustCertificate(folder, s1.certificateFile);
    const auto = makeLink(s1, folder, {});
    await auto.link.start();
    expect(auto.link.security?.mode).toBe('SignAndEncrypt');
    expect(plcSecurityText(auto.link)).toBe('security SignAndEncrypt Aes256_Sha256_RsaPss');
    await auto.link.stop();
  }, 60_000);

  it('auto against a PLC that offers only None is refused (coded) and tells how to allow it explicitly', async () => {
    const folder = stationFolder('d2-station');
    const { link, states } = makeLink(s3, folder, {});
    await link.start();
    await until(() => link.securityErrors >= 2, 30_000, 'two refused attempts');
    expect(states).not.toContain('connected');
    expect(link.lastError).toMatch(/INSPECTOR_PLC_SECURITY: .*offers no secure endpoint.*plc\.security\.mode "None"/);
    await link.stop();
    const none = makeLink(s3, folder, { mode: 'None' });
    await none.link.start();
    expect(none.link.state).toBe('connected');
    expect(none.link.security).toEqual({ mode: 'None', policy: 'None' });
    await none.link.stop();
  }, 60_000);

  it('refuses a policy with mode None in the config', () => {
    expect(() => resolveSecurity({ mode: 'None', policy: 'Basic256Sha256' })).toThrow(/INSPECTOR_CONFIG_INVALID|mode None has no policy/);
  });
});

describe('user identity', () => {
  it('user name + password (from a file) is accepted; a wrong password is refused with a coded error; no password in any log', async () => {
    logLines.length = 0;
    const folder = stationFolder('e-station');
    await trustCertificate(folder, s1.certificateFile);
    const pwFile = join(work, 'secrets', 'plc-password');
    mkdirSync(join(work, 'secrets'), { recursive: true });
    writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
    const out: string[] = [];
    const origOut = process.stdout.write.bind(process.stdout);
    const origErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string | Uint8Array, ...rest: unknown[]) => { out.push(String(c)); return (origOut as (...a: unknown[]) => boolean)(c, ...rest); }) as typeof process.stdout.write;
    process.stderr.write = ((c: string | Uint8Array, ...rest: unknown[]) => { out.push(String(c)); return (origErr as (...a: unknown[]) => boolean)(c, ...rest); }) as typeof process.stderr.write;
    try {
      const good = makeLink(s1, folder, { mode: 'SignAndEncrypt' }, { userName: 'operator', passwordFile: pwFile });
      await good.link.start();
      expect(good.link.state).toBe('connected');
      await writeParts(s1, good.link, 2);
      expect(s1.lastWrite).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss', user: 'operator' });
      await good.link.stop();

      const bad = makeLink(s1, folder, { mode: 'SignAndEncrypt' }, { userName: 'operator', password: WRONG_PASSWORD });
      await bad.link.start();
      await until(() => bad.link.securityErrors >= 2, 30_000, 'two refused attempts');
      expect(bad.states).not.toContain('connected');
      expect(bad.link.lastErrorCode).toBe('INSPECTOR_PLC_SECURITY');
      expect(bad.link.lastError).toMatch(/the PLC refused the user user name "operator" \(BadUserAccessDenied\)/);
      await bad.link.stop();

      // X.509 user: a certificate + private key (PEM files) the PLC accepts as a user
      const userPki = join(work, 'user-pki');
      const ucm = new OPCUACertificateManager({ rootFolder: userPki, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true });
      await ucm.initialize();
      const userCert = join(userPki, 'own', 'certs', 'operator.pem');
      await ucm.createSelfSignedCertificate({ applicationUri: 'urn:inline-inspector:operator', subject: '/CN=operator', dns: [],
        startDate: new Date(), validity: 30, outputFile: userCert });
      await ucm.dispose();
      const x509 = makeLink(s1, folder, { mode: 'SignAndEncrypt' },
        { certificateFile: userCert, privateKeyFile: join(userPki, 'own', 'private', 'private_key.pem') });
      await x509.link.start();
      expect(x509.link.state).toBe('connected');
      await writeParts(s1, x509.link, 2);
      expect(s1.lastWrite).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss', user: 'x509' });
      await x509.link.stop();

      // the PLC without anonymous access: an anonymous station is told so (coded) before it tries
      const anon = makeLink(s2, stationFolder('e2-station'), { mode: 'auto' });
      await trustCertificate(join(work, 'e2-station'), s2.certificateFile);
      await anon.link.start();
      await until(() => anon.link.securityErrors >= 1, 30_000, 'a refused attempt');
      expect(anon.link.lastError).toMatch(/INSPECTOR_PLC_SECURITY: .*does not accept Anonymous users/);
      await anon.link.stop();
    } finally {
      process.stdout.write = origOut;
      process.stderr.write = origErr;
    }
    const everything = [...logLines, ...out].join('\n');
    expect(logLines.length).toBeGreaterThan(10); // the capture works: the links logged
    expect(everything).toContain('operator'); // the user name may be logged ...
    expect(everything).not.toContain(PASSWORD); // ... its password never
    expect(everything).not.toContain(WRONG_PASSWORD);
  }, 120_000);
});

describe('inspector pki (the command line)', () => {
  /** the command in this process, stdout captured */
  async function pki(...args: string[]): Promise<string> {
    const out: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string | Uint8Array) => { out.push(String(c)); return true; }) as typeof process.stdout.write;
    try {
      await pkiCommand().exitOverride().parseAsync(args, { from: 'user' });
    } finally {
      process.stdout.write = orig;
    }
    return out.join('');
  }

  it('lists the own, trusted and rejected certificates; trusts and rejects by thumbprint; refuses an unknown one with a code', async () => {
    const folder = stationFolder('f-station');
    // what a refused first attempt leaves: the PLC's certificate in rejected/
    const { link } = makeLink(s1, folder, {});
    await link.start();
    await link.stop();
    const own = certificateInfo(readFileSync(join(folder, 'own', 'certs', 'client_certificate.pem'))).thumbprint;
    // once through the real command line (registered in cli/main.ts)
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'pki', 'list', '--folder', folder],
      { cwd: process.cwd(), env: { ...process.env, INSPECTOR_LOG_LEVEL: 'warn' } });
    expect(stdout).toMatch(new RegExp(`^own\\t${own}\\t`, 'm'));
    expect(stdout).toMatch(new RegExp(`^rejected\\t${simThumbprint}\\t\\d{4}-\\d\\d-\\d\\d\\t.*PLC simulator`, 'm'));
    expect(await pki('trust', simThumbprint.slice(0, 10), '--folder', folder)).toMatch(new RegExp(`^trusted\\t${simThumbprint}`));
    expect(await pki('list', '--folder', folder)).toMatch(new RegExp(`^trusted\\t${simThumbprint}`, 'm'));
    expect(await pki('reject', simThumbprint, '--folder', folder)).toMatch(new RegExp(`^rejected\\t${simThumbprint}`));
    await expect(pki('trust', 'deadbeefdeadbeef', '--folder', folder)).rejects.toMatchObject({ code: 'INSPECTOR_PKI_UNKNOWN_CERTIFICATE' });
  }, 120_000);
});
