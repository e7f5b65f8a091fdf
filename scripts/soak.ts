/**
 * npm run soak -- --parts N --rate R --faults plc-restart,station-kill,camera-loss,inference-kill,model-swap --json FILE
 *
 * The real chain for a long time, with faults: the PLC simulator in its own
 * process fires the line at R parts/s and triggers the replay camera; the
 * station runs as `inspector run` under a supervisor that restarts it; SQLite
 * on disk. Faults are spread evenly over the run: plc-restart (kill -9 of the
 * PLC, a new one with a new epoch), station-kill (kill -9; the supervisor
 * restarts it), camera-loss, inference-kill, model-swap (injected inside the
 * station, station/fault-injection.ts). After each, the time until the PLC
 * accepts a part again is the resync time. The report (stdout, --json) counts
 * photo-eye parts, rows, parts without a row, escapes, wrong-part results,
 * SQLite integrity and the RSS of each process; exit code 1 when a line-truth
 * check fails (escapes, wrong-part results, parts without a row, duplicates,
 * integrity, a fault not recovered).
 */
import { Command } from 'commander';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../inspector/core/free-port.js';
import { trustCertificate } from '../inspector/plc/plc-security.js';
import { SimProcess, StationSupervisor, rssOf, type SimTruth } from './soak/processes.js';
import { analyseResults, type EpochTruth } from './soak/report.js';

const FAULTS = ['plc-restart', 'station-kill', 'camera-loss', 'inference-kill', 'model-swap'] as const;
type Fault = (typeof FAULTS)[number];

const program = new Command('soak')
  .option('--parts <n>', 'photo-eye parts in all', '3000')
  .option('--rate <r>', 'parts per second of the line', '50')
  .option('--faults <list>', `comma-separated, in order: ${FAULTS.join(',')}`, FAULTS.join(','))
  .option('--json <file>', 'write the report here')
  .option('--folder <dir>', 'replay images (ground-truth.json one level up)', 'test-images/test/parts')
  .option('--gate-window-ms <ms>', 'PLC gate window', '200')
  .option('--work <dir>', 'working folder (default: a new temp folder)')
  .option('--settle-ms <ms>', 'longest wait for the line to accept a part after a fault', '120000')
  .option('--save-images <which>', 'the station\'s results.saveImages: rejects | all | none', 'rejects')
  .option('--sample-ms <ms>', 'RSS sampling period', '2000')
  .option('--plc-security <mode>', 'the PLC link\'s security: None | Sign | SignAndEncrypt (the soak trusts the simulator\'s certificate first, as `inspector pki trust FILE` does)', 'SignAndEncrypt')
  .parse();
const o = program.opts<{ parts: string; rate: string; faults: string; json?: string; folder: string; gateWindowMs: string; work?: string;
  settleMs: string; saveImages: string; sampleMs: string; plcSecurity: 'None' | 'Sign' | 'SignAndEncrypt' }>();
if (!['rejects', 'all', 'none'].includes(o.saveImages)) program.error('--save-images must be rejects, all or none');
if (!['None', 'Sign', 'SignAndEncrypt'].includes(o.plcSecurity)) program.error('--plc-security must be None, Sign or SignAndEncrypt');
const parts = Number(o.parts);
const rate = Number(o.rate);
const faults = o.faults ? o.faults.split(',').filter(Boolean) as Fault[] : [];
for (const f of faults) if (!FAULTS.includes(f)) program.error(`unknown fault ${f} (known: ${FAULTS.join(', ')})`);
if (!(parts > 0) || !(rate > 0)) program.error('--parts and --rate must be positive');

const work = resolve(o.work ?? mkdtempSync(join(tmpdir(), 'inspector-soak-')));
mkdirSync(work, { recursive: true });
const folder = resolve(o.folder);
const items = readdirSync(folder).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const gt = JSON.parse(readFileSync(join(folder, '..', 'ground-truth.json'), 'utf8')) as { images: Array<{ file: string; label: string }> };
const bad = new Set(gt.images.filter((i) => i.label !== 'good').map((i) => i.file.split('/').pop()!));
const defective = new Set(items.map((f, i) => (bad.has(f) ? i : -1)).filter((i) => i >= 0));
writeFileSync(join(work, 'defective-items.json'), JSON.stringify([...defective]));

const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
const config = {
  station: { name: 'soak' },
  camera: { template: 'replay-triggered', folder, triggerPort, cacheDir: resolve('var/replay-cache') },
  model: { providers: ['cpu'] },
  plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, security: { mode: o.plcSecurity } },
  results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: o.saveImages, passSampleEvery: 1000 },
  server: { port: 0 },
  registry: { statePath: join(work, 'registry-state.json') },
  calibration: { dir: join(work, 'calibration') },
  retention: { enabled: true, budgetBytes: 200 * 1024 ** 2, intervalMs: 60_000 },
};
const configFile = join(work, 'station.json');
writeFileSync(configFile, JSON.stringify(config, null, 2));
const log = (m: string): void => { process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${m}\n`); };
log(`work folder ${work}; ${parts} parts at ${rate}/s; faults: ${faults.join(', ') || 'none'}`);

const simArgs = (maxParts: number, paused: boolean): string[] => ['--port', String(plcPort), '--photo-eye-port', '0',
  '--gate-window-ms', o.gateWindowMs, '--line-rate', String(rate), '--trigger-port', String(triggerPort), '--items', String(items.length),
  '--max-parts', String(maxParts), '--defective-items-file', join(work, 'defective-items.json'), '--cert-folder', join(work, 'pki-plc'),
  ...(paused ? ['--line-paused'] : [])];

const epochs: EpochTruth[] = [];
const note = (e: EpochTruth, t: SimTruth): void => {
  e.parts = Math.max(e.parts, t.counters.LastPartId);
  e.escapes = t.truth.escapes;
  e.defectiveParts = t.truth.defectiveParts;
};
let sim = await SimProcess.start(simArgs(parts, true), join(work, 'plc.log'));
// the operator's trust step, before the station's first connect: the simulator keeps its certificate
// in pki-plc across its restarts, so one trust holds for every PLC epoch of the run
if (o.plcSecurity !== 'None') await trustCertificate(join(work, 'pki-station'), join(work, 'pki-plc', 'server', 'own', 'certs', 'certificate.pem'));
let current: EpochTruth = { epoch: sim.epoch, parts: 0, escapes: 0, defectiveParts: 0, killed: false };
epochs.push(current);
const station = new StationSupervisor(configFile, join(work, 'station.log'));
await station.start();
log(`station ready (pid ${station.pid}); PLC epoch ${sim.epoch}`);

const rss: Array<{ at: number; parts: number; station: number | null; plc: number | null; stationPid?: number; plcPid?: number }> = [];
const done = (): number => epochs.reduce((a, e) => a + e.parts, 0);
const sample = (): void => { rss.push({ at: Date.now(), parts: done(), station: rssOf(station.pid), plc: rssOf(sim.pid), stationPid: station.pid, plcPid: sim.pid }); };
sample();
sim.startLine();
const t0 = Date.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until the PLC accepts a part again after `since` (Accepted grows); returns ms, or null after settleMs. */
async function acceptedAgain(base: number, since: number): Promise<number | null> {
  while (Date.now() - since < Number(o.settleMs)) {
    const t = await sim.truth().catch(() => null);
    if (t) { note(current, t); if (t.counters.Accepted > base) return Date.now() - since; if (!t.lineRunning && t.pendingParts === 0) return null; }
    await sleep(100);
  }
  return null;
}

/**
 * resyncMs: from the fault until the PLC accepts a part again. restartedAfterMs: for the kills, how long
 * the killed side took to be back (a new PLC listening, the station ready); the difference is the resync itself.
 */
const faultLog: Array<{ fault: Fault; atPart: number; ok: boolean; detail: string; resyncMs: number | null; restartedAfterMs: number | null }> = [];
let next = 0;
let lastSample = 0;
for (;;) {
  const t = await sim.truth();
  note(current, t);
  if (Date.now() - lastSample > Number(o.sampleMs)) { sample(); lastSample = Date.now(); }
  const total = done();
  if (next < faults.length && total >= Math.floor(((next + 1) * parts) / (faults.length + 1))) {
    const fault = faults[next++]!;
    log(`part ${total}: ${fault}`);
    const since = Date.now();
    let ok = true; let detail = '';
    let base = t.counters.Accepted;
    let restartedAfterMs: number | null = null;
    if (fault === 'plc-restart') {
      await sim.kill9();
      current.killed = true;
      sim = await SimProcess.start(simArgs(Math.max(1, parts - done()), false), join(work, 'plc.log'));
      restartedAfterMs = Date.now() - since;
      current = { epoch: sim.epoch, parts: 0, escapes: 0, defectiveParts: 0, killed: false };
      epochs.push(current);
      base = 0;
      detail = `new PLC epoch ${sim.epoch}`;
    } else if (fault === 'station-kill') {
      const ready = station.nextReady();
      station.kill9();
      await sleep(Number(o.gateWindowMs) + 100); // results already sent settle at the PLC
      base = (await sim.truth()).counters.Accepted;
      await ready;
      restartedAfterMs = Date.now() - since;
      detail = `restarted by the supervisor (pid ${station.pid})`;
    } else {
      const r = await station.fault(fault);
      ok = r.ok; detail = r.detail;
    }
    const resyncMs = await acceptedAgain(base, since);
    faultLog.push({ fault, atPart: total, ok, detail, resyncMs, restartedAfterMs });
    log(`  ${fault}: ${ok ? 'injected' : 'FAILED'} (${detail}); ${restartedAfterMs === null ? '' : `back after ${restartedAfterMs} ms, `}`
      + `line accepting again after ${resyncMs ?? 'never'} ms`);
    continue;
  }
  if (!t.lineRunning && t.pendingParts === 0 && done() >= parts) break;
  if (!t.lineRunning && t.pendingParts === 0 && next >= faults.length) break;
  await sleep(250);
}
sample();
const seconds = (Date.now() - t0) / 1000;
log(`line done: ${done()} parts in ${seconds.toFixed(0)} s; stopping the station`);
const stationExit = await station.stop();
note(current, await sim.truth());
await sim.stop();

const db = analyseResults(config.results.dbPath, epochs, items, defective);
const tenth = (from: number, to: number, key: 'station' | 'plc'): number | null => {
  const xs = rss.filter((s) => s.parts >= from && s.parts <= to && s[key] !== null).map((s) => s[key]!);
  return xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : null;
};
const total = done();
/** RSS of the station process that ran the end of the run: the first and last tenth of its own life (a leak shows there) */
const lastPid = rss.at(-1)?.stationPid;
const own = rss.filter((s) => s.stationPid === lastPid && s.station !== null);
const ownSpan = own.length > 1 ? [own[0]!.parts, own.at(-1)!.parts] : [0, 0];
const ownTenth = (lo: number, hi: number): number | null => {
  const xs = own.filter((s) => s.parts >= lo && s.parts <= hi).map((s) => s.station!);
  return xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : null;
};
const span = ownSpan[1]! - ownSpan[0]!;
const finalStation = { pid: lastPid, fromPart: ownSpan[0], toPart: ownSpan[1],
  firstTenth: ownTenth(ownSpan[0]!, ownSpan[0]! + span / 10), lastTenth: ownTenth(ownSpan[1]! - span / 10, ownSpan[1]!) };
const report = {
  command: `npm run soak -- ${process.argv.slice(2).join(' ')}`,
  startedAt: new Date(t0).toISOString(), seconds: Math.round(seconds), partsAsked: parts, rate, gateWindowMs: Number(o.gateWindowMs),
  plcSecurity: o.plcSecurity, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? '2',
  epochs, faults: faultLog, stationRestarts: station.restarts, stationExitCode: stationExit,
  ...db,
  escapesAtPlc: epochs.reduce((a, e) => a + e.escapes, 0),
  rss: {
    stationFirstTenth: tenth(0, total / 10, 'station'), stationLastTenth: tenth(total * 0.9, total, 'station'),
    plcFirstTenth: tenth(0, total / 10, 'plc'), plcLastTenth: tenth(total * 0.9, total, 'plc'),
    finalStation,
    finalStationChange: finalStation.firstTenth && finalStation.lastTenth ? finalStation.lastTenth / finalStation.firstTenth - 1 : null,
    samples: rss.map((x) => [Math.round((x.at - t0) / 1000), x.parts, x.station, x.plc, x.stationPid, x.plcPid]),
    samplesColumns: ['s', 'parts', 'stationRss', 'plcRss', 'stationPid', 'plcPid'],
  },
};
const failures: string[] = [];
if (report.escapesAtPlc > 0 || db.escapesInRows > 0) failures.push('escapes');
if (db.wrongPartResults > 0) failures.push('wrong-part results');
if (db.partsWithoutRow > 0) failures.push('parts without a row');
if (db.duplicateRows > 0) failures.push('duplicate rows');
if (db.integrity !== 'ok') failures.push('SQLite integrity');
if (faultLog.some((f) => !f.ok || f.resyncMs === null)) failures.push('a fault not recovered');
if (faultLog.length < faults.length) failures.push('a fault not injected');
const out = { ...report, failures };
const text = JSON.stringify(out, null, 2);
if (o.json) writeFileSync(o.json, text + '\n');
process.stdout.write(text + '\n');
log(failures.length ? `FAILED: ${failures.join(', ')}` : 'all line-truth checks passed');
process.exit(failures.length ? 1 : 0);
