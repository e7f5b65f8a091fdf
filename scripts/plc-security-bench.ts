/**
 * The cost of OPC UA security on the PLC write (the per-part hot path): the
 * real PlcLink against the real PLC simulator on 127.0.0.1, one link per
 * security setting, the PLC's certificate trusted explicitly (as
 * `inspector pki trust FILE` does). Writes are sequential, one result
 * WriteRequest each (Pass, Code, Score, Epoch, PartId), like the part loop.
 * The settings take turns in blocks so that machine load hits them alike.
 *
 *   npx tsx scripts/plc-security-bench.ts [--writes 2000] [--block 100]
 *       [--security None,Sign/Aes256_Sha256_RsaPss,SignAndEncrypt/Aes256_Sha256_RsaPss,...]
 *
 * Prints one line per setting (p50 / p90 / p99 / max in ms; CPU per write of this
 * process, i.e. station link and PLC simulator together, which load barely skews)
 * and the load average.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../inspector/core/free-port.js';
import { logger } from '../inspector/core/logger.js';
import { defaultPlcNodeIds } from '../inspector/plc/plc-contract.js';
import { PlcLink } from '../inspector/plc/plc-link.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { trustCertificate, type PlcSecurityConfig } from '../inspector/plc/plc-security.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '2000' },
    block: { type: 'string', default: '100' },
    security: { type: 'string', default: 'None,SignAndEncrypt/Aes256_Sha256_RsaPss,SignAndEncrypt/Basic256Sha256,Sign/Aes256_Sha256_RsaPss' },
  },
  strict: true,
});
const writes = Number(values.writes);
const block = Number(values.block);
const settings = values.security.split(',').map((s): { label: string; security: PlcSecurityConfig } => {
  const [mode, policy] = s.split('/') as [PlcSecurityConfig['mode'], PlcSecurityConfig['policy'] | undefined];
  return { label: s, security: { mode, policy: policy ?? 'auto' } };
});

const log = logger.child({}, { level: 'warn' });
const work = mkdtempSync(join(tmpdir(), 'plc-security-bench-'));
const sim = new PlcSimulator({ port: await freePort(), gateWindowMs: 1000, certificateFolder: join(work, 'plc'), logger: log });
await sim.start();
const folder = join(work, 'station');
const links: { label: string; link: PlcLink; ms: number[]; cpuUs: number }[] = [];
for (const s of settings) {
  const link = new PlcLink({ endpoint: sim.endpoint, nodeIds: defaultPlcNodeIds, certificateFolder: folder, heartbeatMs: 500,
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, connectTimeoutMs: 10_000, logger: log, security: s.security });
  if (links.length === 0) await trustCertificate(folder, sim.certificateFile);
  await link.start();
  const t0 = performance.now();
  while (link.state !== 'connected') {
    if (performance.now() - t0 > 30_000) throw new Error(`${s.label}: not connected: ${link.lastError}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const sec = link.security!;
  if (sec.mode !== s.security.mode || (s.security.policy !== 'auto' && sec.policy !== s.security.policy)) {
    throw new Error(`${s.label}: connected with ${sec.mode}/${sec.policy}`);
  }
  links.push({ label: s.label, link, ms: [], cpuUs: 0 });
}
// warm-up: JIT of the crypto and encoders on every link
for (const l of links) for (let i = 0; i < 200; i++) await l.link.writeResult(sim.partArrived(), sim.epoch, true, 0, 0.1);
const load0 = loadavg()[0]!;
for (let done = 0; done < writes; done += block) {
  for (const l of links) {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < block; i++) l.ms.push(await l.link.writeResult(sim.partArrived(), sim.epoch, true, 0, 0.1));
    const cpu = process.cpuUsage(cpu0);
    l.cpuUs += cpu.user + cpu.system;
  }
}
const load1 = loadavg()[0]!;
const q = (a: number[], p: number): number => a[Math.min(a.length - 1, Math.floor(p * a.length))]!;
console.log(`${writes} sequential result writes per setting, blocks of ${block}; load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`);
console.log('security                                   p50 ms   p90 ms   p99 ms   max ms   CPU µs/write');
for (const l of links) {
  const a = [...l.ms].sort((x, y) => x - y);
  console.log(`${l.label.padEnd(40)} ${q(a, 0.5).toFixed(3).padStart(8)} ${q(a, 0.9).toFixed(3).padStart(8)} ${q(a, 0.99).toFixed(3).padStart(8)} ${a[a.length - 1]!.toFixed(3).padStart(8)} ${(l.cpuUs / l.ms.length).toFixed(0).padStart(10)}`);
}
const c = sim.counters();
console.log(`PLC: ${c.ResultsReceived} results received, ${c.Accepted} accepted, ${c.LateResults} late`);
for (const l of links) await l.link.stop();
await sim.stop();
rmSync(work, { recursive: true, force: true });
process.exit(0);
