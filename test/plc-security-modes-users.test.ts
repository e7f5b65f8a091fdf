/**
 * OPC UA security of the PLC link, for real (the simulators S1–S3 and the links:
 * helpers/plc-security-rig.ts): auto picking the most secure endpoint, a configured
 * policy the PLC does not offer, security None only when configured, and the user
 * identity (password from a file, a wrong password, an X.509 user, anonymous refused),
 * with no password in any log. Certificate trust: plc-security-certificates.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
import type { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { resolveSecurity, trustCertificate } from '../inspector/plc/plc-security.js';
import { plcSecurityText } from '../inspector/station/health.js';
import { PASSWORD, WRONG_PASSWORD, plcSecurityRig, writeParts } from './helpers/plc-security-rig.js';
import { until } from './helpers/wait.js';

const { work, logLines, stationFolder, makeLink, start, stop } = plcSecurityRig('plc-security-test-');
let s1: PlcSimulator;
let s2: PlcSimulator;
let s3: PlcSimulator;

beforeAll(async () => { ({ s1, s2, s3 } = await start()); }, 180_000);
afterAll(stop, 60_000);

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
