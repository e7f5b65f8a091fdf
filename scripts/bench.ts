/**
 * The station benchmark: the whole chain, for real.
 *
 *   npm run bench -- --parts 2000 --rate 100 --json bench.json
 *
 * The line: the PLC simulator (a separate process) fires R parts/s on its own
 * clock, numbers them, and triggers the station's replay camera (GStreamer,
 * `replay-triggered`: raw 1280x1024 GRAY8 frames from test-images) with each
 * part's (Epoch, PartId) → inference worker (onnxruntime-node) → verdict → OPC
 * UA write of (Pass, Code, Score, Epoch, PartId) to the PLC, which
 * fail-safe-rejects parts without a result in their gate window. The line does
 * not wait for the station: a station that falls behind loses parts (each one
 * a not-inspected row). Prints a table and writes JSON.
 *
 * The headline is photo-eye → result latched at the PLC, per part, on one clock
 * (CLOCK_MONOTONIC, read by the simulator's process and the station's alike),
 * with the stages that add up to it (scripts/line-stages.ts). The bare figures
 * (preprocessing + session.run, and session.run alone) are taken on real frames
 * DURING the run: the inference worker keeps every --bare-every'th part's frame
 * and prepares + runs it again half a part period after answering it, never while
 * a part is in flight (model-runner.ts timeBareEvery).
 *
 * --plc-security MODE[/POLICY] (default auto, as a station): the OPC UA security
 * of the PLC link. The bench plays the operator: the station's first attempt
 * refuses the simulator's unknown certificate (rejected/), the bench trusts it
 * (as `inspector pki trust` does) and starts the line once the link is up.
 *
 * --vision-server: the station also serves OPC 40100 (inspector/vision-server/) and a client
 * subscribes to its ResultReadyEvents for the whole run: compare plc_write_ms with and without
 * it (on a quiet machine) to see what the server costs the PLC write.
 */
import { writeFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, cpus, setPriority } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { Command } from 'commander';
import { logger } from '../inspector/core/logger.js';
import { resolveConfig } from '../inspector/station/config.js';
import { subscribeResultEvents } from '../inspector/vision-server/result-subscriber.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimProcess } from '../inspector/plc/plc-sim-process.js';
import { freePort } from '../inspector/core/free-port.js';
import { formatBenchTable, type BenchReport } from './bench-report.js';
import { lineStages, lineStampsCsv } from './line-stages.js';
import { wakeLatency } from './wake-latency.js';
import { benchUndistortStage } from '../calibration/undistort-bench.js';
import { teachFromTrainSplit } from './bench-teach.js';
import { replayLine } from '../inspector/cli/replay-line.js';
import { storeEntries, trustCertificate, type PlcSecurityConfig } from '../inspector/plc/plc-security.js';

const opts = new Command('bench')
  .option('--parts <n>', 'parts to inspect', (v) => parseInt(v, 10), 2000)
  .option('--rate <r>', "parts per second fired by the line's clock (the PLC simulator triggers the camera)", (v) => parseFloat(v), 100)
  .option('--json <file>', 'write the report as JSON')
  .option('--images <dir>', 'folder of part images to replay', 'test-images/test/parts')
  .option('--model <dir>', 'model package', 'models/default/1.0.0')
  .option('--teach <n>', 'bench a package taught (with registration) from the first n good parts of test-images/train instead of --model',
    (v) => parseInt(v, 10))
  .option('--providers <list>', 'execution-provider preference', 'tensorrt,cuda,cpu')
  .option('--threads <n>', 'ONNX Runtime intra-op threads', (v) => parseInt(v, 10), 2)
  .option('--gate-window-ms <ms>', 'PLC reject-gate window', (v) => parseInt(v, 10), 100)
  .option('--save-images <policy>', 'all | rejects | none', 'rejects')
  .option('--bare-every <n>', 'bare timing on real frames during the run: the worker re-runs every n-th part\'s frame (0: off)',
    (v) => parseInt(v, 10), 10)
  .option('--plc-security <mode[/policy]>', 'PLC link security: auto | None | Sign[/policy] | SignAndEncrypt[/policy]'
    + ' (policies Aes256_Sha256_RsaPss, Basic256Sha256, Aes128_Sha256_RsaOaep)', 'auto')
  .option('--vision-server', 'also run the OPC 40100 vision server, with a client subscribed to every ResultReadyEvent')
  .option('--hot-path-nice <n>', "station.hotPathNice: nice of the hot path's threads (main, capture, live inference), as deploy/ runs it; 'off': inherit", '-10')
  .option('--outcomes-ms <ms>', 'plc.outcomesIntervalMs: how often the gate outcomes are read back from the PLC', (v) => parseInt(v, 10), 250)
  .option('--settle-ms <ms>', 'wait this long after the PLC link is up before the line starts', (v) => parseInt(v, 10), 0)
  .option('--parts-csv <file>', 'also write every part\'s stamps, one row per part (scripts/line-stages.ts lineStampsCsv)')
  .option('--station-load', 'the whole station beside the line once it is up (scripts/bench-station-load.ts): a shadow model, Chromium on Live, '
    + '20 API requests/s on the review routes, images of rejects saved')
  .parse(process.argv)
  .opts<{ parts: number; rate: number; json?: string; images: string; model: string; providers: string; threads: number;
    gateWindowMs: number; saveImages: 'all' | 'rejects' | 'none'; bareEvery: number; teach?: number; plcSecurity: string; visionServer?: boolean; stationLoad?: boolean; hotPathNice: string; partsCsv?: string; settleMs: number; outcomesMs: number }>();

const log = logger.child({ mod: 'bench' });
const work = mkdtempSync(join(tmpdir(), 'inspector-bench-'));
if (opts.teach) opts.model = await teachFromTrainSplit(opts.teach, join(work, 'taught', '1.0.0'));
if (!(opts.parts > 0) || !(opts.rate > 0)) throw new Error('--parts and --rate must be positive');
const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
const line = replayLine(opts.images);
// the line waits for the station (startLine below), then fires exactly --parts parts
const plcSim = await PlcSimProcess.start({
  port: plcPort, gateWindowMs: opts.gateWindowMs, lineRate: opts.rate, triggerPort, items: line.items, maxParts: opts.parts,
  linePaused: true, logIntervalMs: 0, ...(line.defectiveItems ? { defectiveItems: line.defectiveItems } : {}),
});

// --station-load: loaded only when asked (it drives Chromium through playwright-core); rejects' images are part of the load
const stationLoad = opts.stationLoad ? await import('./bench-station-load.js') : null;
if (stationLoad && opts.saveImages === 'none') opts.saveImages = 'rejects';
const [secMode, secPolicy] = opts.plcSecurity.split('/') as [PlcSecurityConfig['mode'], PlcSecurityConfig['policy'] | undefined];
const pki = join(work, 'pki');
const hotPathNice = opts.hotPathNice === 'off' ? null : parseInt(opts.hotPathNice, 10);
const config = resolveConfig({
  station: { hotPathNice },
  camera: { template: 'replay-triggered', folder: opts.images, triggerPort, cacheDir: 'var/replay-cache' },
  model: { packageDir: opts.model, providers: opts.providers.split(',') as never, intraOpNumThreads: opts.threads },
  plc: { endpoint: plcSim.endpoint, certificateFolder: pki, security: { mode: secMode, policy: secPolicy ?? 'auto' }, outcomesIntervalMs: opts.outcomesMs },
  results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: opts.saveImages },
  server: { enabled: false },
  ...(opts.visionServer ? { visionServer: { enabled: true, port: await freePort(), certificateFolder: join(work, 'pki-vision'),
    securityModes: ['None' as const], allowAnonymous: true } } : {}),
  ...(stationLoad ? stationLoad.stationLoadConfig({ work, httpPort: await freePort() }) : {}),
});

// the PLC is another machine on a real line: its simulator must not queue behind the station here
if (hotPathNice !== null && plcSim.pid) {
  for (const tid of readdirSync(`/proc/${plcSim.pid}/task`)) { try { setPriority(Number(tid), hotPathNice); } catch { /* as the station's own */ } }
}
const station = await Station.start(config, logger);
const subscriber = station.vision ? await subscribeResultEvents(station.vision.endpoint) : null; // --vision-server
if (station.plc.state !== 'connected') {
  // the operator's step: trust the PLC certificate the first attempt refused (the simulator this bench started)
  const refused = storeEntries(pki).filter((e) => e.status === 'rejected');
  if (refused.length !== 1) throw new Error(`PLC link not connected: ${station.plc.lastError}`);
  await trustCertificate(pki, refused[0]!.thumbprint);
  const until = performance.now() + 30_000;
  const up = (): boolean => station.plc.state === 'connected';
  while (!up() && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  if (!up()) throw new Error(`PLC link not connected: ${station.plc.lastError}`);
}
const plcSecurity = `${station.plc.security!.mode} ${station.plc.security!.policy}`;
log.info({ plcSecurity }, 'PLC link up');
// bare timings on real frames, interleaved with the run: half a part period after the answer (the main
// thread's post-verdict work done, the next part not yet there)
station.runner.timeBareEvery(opts.bareEvery, Math.min(20, 500 / opts.rate));
// the main thread's own event-loop delay over the run: every hand-over of the hot path (frame in, result back,
// PLC write and ack) waits for this loop, so its tail bounds theirs (why the hand-overs are where they are: README)
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
const elu0 = performance.eventLoopUtilization();
// and its garbage collector's pauses (each one stops the loop), on CLOCK_MONOTONIC for --parts-csv
const gcPauses: Array<{ atNs: bigint; ms: number; major: boolean }> = [];
const perfOffsetNs = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } | null }).detail?.kind;
    gcPauses.push({ atNs: perfOffsetNs + BigInt(Math.round(e.startTime * 1e6)), ms: e.duration, major: kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR });
  }
});
if (opts.settleMs > 0) await new Promise((r) => setTimeout(r, opts.settleMs));
// the machine's floor, the station up and idle: how late a thread wakes after a 1 ms sleep (scripts/wake-latency.ts)
const machineWake = await wakeLatency(2, 3);
await plcSim.startLine();
gcObserver.observe({ entryTypes: ['gc'] });
loopDelay.enable();
const t0 = performance.now();
const load = stationLoad ? await stationLoad.startStationLoad({ station, baseUrl: station.httpAddress!, resultsDbPath: config.results.dbPath,
  livePackageDir: opts.model, rate: 20, log }) : null; // after the line's first verdict, while it runs
// parts are the line's: every part fired is inspected or recorded as not inspected (a row with its reason)
const deadline = t0 + (opts.parts / opts.rate) * 1000 + 60_000;
while (station.loop.identity.highestAccounted(plcSim.epoch) < opts.parts && performance.now() < deadline) {
  await new Promise((r) => setTimeout(r, 20));
}
const wallS = (performance.now() - t0) / 1000;
loopDelay.disable();
gcObserver.disconnect();
const gcMs = gcPauses.map((g) => g.ms);
const mainLoop = {
  // monitorEventLoopDelay samples every `resolution` ms: delays are in ns, and include that 1 ms timer period's jitter
  delay_ms: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  utilization: performance.eventLoopUtilization(elu0).utilization,
  gc: { pauses: gcPauses.length, major: gcPauses.filter((g) => g.major).length, total_ms: gcMs.reduce((a, b) => a + b, 0),
    max_ms: gcMs.length > 0 ? Math.max(...gcMs) : 0, over_5ms: gcMs.filter((m) => m > 5).length },
};
const stationLoadReport = await load?.stop(); // the load covers the run: stopped (browser closed) once every part is accounted
await station.stopCapture();
const bareInterleaved = await station.runner.interleavedBare();
const bare = { p50: bareInterleaved.run.p50, p99: bareInterleaved.run.p99, withPreprocess: bareInterleaved.withPreprocess };
// stage `undistort`: the lens table applied to the binned frame (the station's lens, else a typical one)
const undistort = benchUndistortStage(config.calibration.dir, config.camera, 5000);
await new Promise((r) => setTimeout(r, opts.gateWindowMs + 200)); // let the last gate windows close
await station.settleOutcomes(10_000); // the PLC's outcomes read back into the rows
if (stationLoadReport) stationLoadReport.while_loaded = await stationLoad!.whileLoaded(station, config.results.dbPath, stationLoadReport);
const plc = await plcSim.outcomes(1, opts.parts);
// the headline: photo-eye → latched at the PLC per part, the simulator's stamps against the station's
const lineTiming = await plcSim.lineTiming(1, opts.parts);
const { counters, truth } = await plcSim.truth();
const rec = station.loop.rec;
const line1 = lineStages(lineTiming, (id) => rec.timeline.get(plcSim.epoch, id));
if (opts.partsCsv) {
  writeFileSync(opts.partsCsv, lineStampsCsv(lineTiming, (id) => rec.timeline.get(plcSim.epoch, id)));
  // the main thread's GC pauses on the same axis (ms after the first photo-eye)
  const eye0 = BigInt(lineTiming.originNs) + BigInt(lineTiming.photoEyeNs[0] ?? 0);
  writeFileSync(opts.partsCsv.replace(/(\.csv)?$/, '.gc.csv'), ['at,ms,major', ...gcPauses.map((g) =>
    `${(Number(g.atNs - eye0) / 1e6).toFixed(3)},${g.ms.toFixed(3)},${g.major ? 1 : 0}`)].join('\n') + '\n');
  log.info({ file: opts.partsCsv, firstPhotoEyeNs: eye0.toString() }, 'per-part stamps written (ms after the first photo-eye)');
}
const stored = await station.store.count(station.runId);
const accounting = await station.store.partAccounting(station.runId);
const outcomeReads = { ...station.outcomes.stats };
const capture = { ...station.source.stats };
const images = { ...station.images.stats };
const visionEvents = subscriber?.events ?? null;
await subscriber?.close();
await station.stop();
await plcSim.stop();
rmSync(work, { recursive: true, force: true });

const f2v = rec.frameToVerdict.summary();
const pick = ({ p50, p99, max }: { p50: number; p99: number; max: number }): { p50: number; p99: number; max: number } => ({ p50, p99, max });
const report: BenchReport = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
  config: { parts: opts.parts, rate: opts.rate, frame: `${config.camera.width}x${config.camera.height} GRAY8`,
    model: `${station.runner.modelName}@${station.runner.modelVersion}`, threads: opts.threads,
    gate_window_ms: opts.gateWindowMs, save_images: opts.saveImages, bare_every: opts.bareEvery, bare_delay_ms: Math.min(20, 500 / opts.rate), plc_security: plcSecurity,
    hot_path_nice: hotPathNice, settle_ms: opts.settleMs, outcomes_interval_ms: opts.outcomesMs, vision_server: opts.visionServer === true, ...(visionEvents !== null ? { vision_server_events: visionEvents } : {}) },
  provider: station.runner.provider,
  provider_fallbacks: [...station.runner.fallbacks],
  photo_eye_to_latch_ms: pick(line1.photo_eye_to_latch_ms),
  photo_eye_to_latch_inspected_ms: pick(line1.photo_eye_to_latch_inspected_ms),
  line_stages_ms: Object.fromEntries(Object.entries(line1.line_stages_ms).map(([k, v]) => [k, pick(v)])),
  line_timing: { ...line1.counts, clock: 'CLOCK_MONOTONIC (process.hrtime.bigint) in both processes',
    unmatched_results: lineTiming.unmatchedResults },
  frame_to_verdict_ms: { p50: f2v.p50, p99: f2v.p99, max: f2v.max },
  plc_write_ms: (({ p50, p99, max }) => ({ p50, p99, max }))(rec.plcWrite.summary()),
  // interleaved with the run, on the frames just judged (every --bare-every'th part)
  bare_inference_ms: { p50: bare.p50, p99: bare.p99 },
  bare_samples: bareInterleaved.count,
  bare_preprocess_and_inference_ms: bare.withPreprocess,
  preprocess: station.runner.startup.preprocess,
  // registration: only for packages whose manifest registers frames (included in the inference stage)
  stages_ms: Object.fromEntries((['dispatch', 'registration', 'inference', 'frameToVerdict', 'plcWrite'] as const)
    .filter((k) => k !== 'registration' || rec.registration.count > 0)
    .map((k) => { const s = rec[k].summary(); return [k, { p50: s.p50, p99: s.p99 }]; })),
  unregistrable: rec.unregistrable,
  ratio_f2v_p50_over_bare_p50: f2v.p50 / bare.p50,
  ratio_f2v_p50_over_bare_with_preprocess_p50: f2v.p50 / bare.withPreprocess.p50,
  parts: {
    sent: counters.Parts,
    verdicts: rec.parts,
    plc_acknowledged: rec.plcAcked,
    lost: plc.noResult,
    late: plc.late,
    dropped_frames: capture.dropped,
    not_inspected: rec.notInspected,
  },
  plc_outcomes: plc,
  plc_counters: counters,
  // the rows: one per part, with the gate's outcome read back from the PLC
  rows: { stored, inspected: accounting.inspected, gate_outcomes: accounting.gate, duplicates: accounting.duplicates, outcome_reads: outcomeReads },
  ...(line.defectiveItems ? { line_truth: truth } : {}),
  over_budget: rec.overBudget,
  stored_results: stored,
  images,
  capture,
  undistort_ms: undistort,
  wall_s: wallS,
  main_event_loop: mainLoop,
  machine_wake_late_ms: machineWake,
  // the line rehearsal before Ready (inspector/station/rehearsal.ts): frame → verdict of its first and last frame
  rehearsal: station.rehearsal,
  ...(stationLoadReport ? { station_load: stationLoadReport } : {}),
};

process.stdout.write(formatBenchTable(report));
process.stdout.write(`  stage undistort    ${undistort.p50.toFixed(3)}  ${undistort.p99.toFixed(3)}   (${undistort.lut}, ${undistort.lens})\n`);
if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
log.info({ json: opts.json }, 'bench done');
