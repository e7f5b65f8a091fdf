/**
 * OPC UA security of the PLC link, for real (the simulators S1–S3 and the links:
 * helpers/plc-security-rig.ts): the PLC's certificate trusted explicitly through the
 * `inspector pki` code path, untrusted, expired and rejected certificates refused, the
 * PLC refusing the station's certificate, and the `inspector pki` command line.
 * Endpoint choice, security None and user identity: plc-security-modes-users.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
import { freePort } from '../inspector/core/free-port.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { PLC_NAMESPACE_URI } from '../inspector/plc/plc-contract.js';
import { certificateInfo, rejectCertificate, storeEntries, trustCertificate } from '../inspector/plc/plc-security.js';
import { Alarm, Alarms } from '../inspector/station/alarms.js';
import { pkiCommand } from '../inspector/cli/pki-command.js';
import { watchPlcLink } from '../inspector/station/health.js';
import { PASSWORD, expectedOutcomes, plcSecurityRig, writeParts } from './helpers/plc-security-rig.js';
import { until } from './helpers/wait.js';

const { work, log, stationFolder, makeLink, start, stop } = plcSecurityRig('plc-security-test-');
let s1: PlcSimulator;
let s2: PlcSimulator;
let simThumbprint: string;

beforeAll(async () => { ({ s1, s2, simThumbprint } = await start()); }, 180_000);
afterAll(stop, 60_000);

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
