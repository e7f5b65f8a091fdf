/**
 * OPC UA security of the PLC link, for real (test/plc-security-*.test.ts): PLC simulators
 * (node-opcua servers) and PlcLinks on 127.0.0.1, each link with its own PKI folder in a
 * temp dir. Trust goes through the code the `inspector pki` command runs (plc-security.ts
 * trustCertificate / rejectCertificate on the folder), never automatically.
 *
 *   S1: every mode (None, Sign, SignAndEncrypt) × policy, anonymous allowed, one user
 *   S2: Sign only (Aes128_Sha256_RsaOaep, Basic256Sha256), no anonymous, one user,
 *       client certificates trusted explicitly
 *   S3: None only
 * (S2 and S3 reuse S1's server certificate: key generation takes seconds.)
 *
 *   const { work, stationFolder, makeLink, start, stop } = plcSecurityRig('plc-security-x-');
 *   beforeAll(async () => { ({ s1, s2, s3, simThumbprint } = await start()); }, 180_000);
 *   afterAll(stop, 60_000);
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { OPCUACertificateManager, OPCUAClient } from 'node-opcua';
import { freePort } from '../../inspector/core/free-port.js';
import { defaultPlcNodeIds } from '../../inspector/plc/plc-contract.js';
import { CLIENT_APPLICATION_NAME } from '../../inspector/plc/plc-connection.js';
import { PlcLink, type PlcLinkState } from '../../inspector/plc/plc-link.js';
import { certificateInfo, type PlcSecurityConfig, type PlcUserConfig } from '../../inspector/plc/plc-security.js';
import { PlcSimulator } from '../../inspector/plc/plc-simulator.js';
import { until } from './wait.js';

export const PASSWORD = 'pw-Correct-7f3a91';
export const WRONG_PASSWORD = 'pw-Wrong-c2e80d';

export interface PlcSecuritySims { s1: PlcSimulator; s2: PlcSimulator; s3: PlcSimulator; simThumbprint: string }

/** The simulators, the station's certificate template and the links of one test file, in a temp folder. */
export function plcSecurityRig(prefix: string) {
  /** Every log line of the links and simulators (level trace), to look for secrets. */
  const logLines: string[] = [];
  const log = pino({ level: 'trace' }, { write: (s: string) => { logLines.push(s); } });
  const work = mkdtempSync(join(tmpdir(), prefix));
  /** a station application certificate made once, copied into folders where a fresh one is not the point */
  const template = join(work, 'station-template');
  const links: PlcLink[] = [];
  let sims: PlcSimulator[] = [];

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

  async function start(): Promise<PlcSecuritySims> {
    const s1 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc1'), logger: log,
      security: { users: [{ userName: 'operator', password: PASSWORD }] } });
    sims = [s1];
    await s1.start();
    const simThumbprint = certificateInfo(readFileSync(s1.certificateFile)).thumbprint;
    for (const n of ['plc2', 'plc3']) cpSync(join(work, 'plc1', 'server', 'own'), join(work, n, 'server', 'own'), { recursive: true });
    const s2 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc2'), logger: log,
      security: { modes: ['Sign'], policies: ['Aes128_Sha256_RsaOaep', 'Basic256Sha256'], allowAnonymous: false,
        users: [{ userName: 'operator', password: PASSWORD }], autoAcceptClientCertificates: false } });
    const s3 = new PlcSimulator({ port: await freePort(), gateWindowMs: 2000, certificateFolder: join(work, 'plc3'), logger: log,
      security: { modes: ['None'] } });
    sims = [s1, s2, s3];
    // the station's application certificate, once (what PlcLink.start() makes in a fresh folder)
    const cm = new OPCUACertificateManager({ rootFolder: template, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true });
    await cm.initialize();
    await Promise.all([s2.start(), s3.start(),
      OPCUAClient.create({ applicationName: CLIENT_APPLICATION_NAME, clientCertificateManager: cm }).createDefaultCertificate()]);
    await cm.dispose();
    return { s1, s2, s3, simThumbprint };
  }

  async function stop(): Promise<void> {
    for (const l of links) await l.stop().catch(() => undefined);
    for (const s of sims) await s.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }

  return { work, log, logLines, stationFolder, makeLink, start, stop };
}

/** n parts through the photo-eye, one result each (even: accept; odd: reject with code 3); their outcomes at the PLC. */
export async function writeParts(sim: PlcSimulator, link: PlcLink, n: number): Promise<{ ids: number[]; outcomes: string[] }> {
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
export const expectedOutcomes = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 'accepted' : 'rejected'));
