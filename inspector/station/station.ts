/**
 * A running station: camera → model → PLC, with results, images, metrics,
 * health and the HTTP server around it. `Station.start()` brings the parts up
 * in an order where a failure says exactly what is wrong (a bad model package
 * fails before the camera is opened), and `stop()` takes them down without
 * losing a result.
 */
import { loadPipelineTemplate } from '../capture/pipeline-templates.js';
import { DEFAULT_REHEARSAL, rehearseLine, type RehearsalSummary } from './rehearsal.js';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import { partIdMode, type StationConfig } from './config.js';
import { PartIdentity } from './part-identity.js';
import { PlcOutcomes } from './plc-outcomes.js';
import { WorkerDeaths } from './worker-deaths.js';
import { faultInjectionEnabled } from './fault-injection.js';
import { CaptureHost, RING_SLOTS } from '../capture/capture-host.js';
import { FrameRing } from '../capture/frame-ring.js';
import { ModelRunner } from '../inference/model-runner.js';
import { PlcLink } from '../plc/plc-link.js';
import { redactPlcSecrets } from '../plc/plc-security.js';
import { defaultPlcNodeIds } from '../plc/plc-contract.js';
import { ResultStore } from '../results/result-store.js';
import { ImageWriter } from '../results/image-writer.js';
import { StationMetrics, type CountersSnapshot } from './metrics.js';
import { Alarm, Alarms } from './alarms.js';
import { PartLoop } from './part-loop.js';
import { buildHealth, watchPlcLink } from './health.js';
import { StationCalibration } from '../../calibration/station-calibration.js';
import type { ServerHost } from '../server/server-host.js';
import { startStationServer } from '../server/start-server.js';
import type { HealthReport } from '../server/station-view.js';
import { lowerHotPath, raiseHotPath } from '../core/thread-priority.js';
import { RetentionScheduler } from '../retention/retention-scheduler.js';
import { diskLowDetail, type DiskStatus } from '../retention/disk-pacer.js';
import { LiveFeed, type OperatorStatus } from '../server/live-feed.js';
import type { VisionServerHost } from '../vision-server/vision-host.js';
import { redactVisionSecrets, startVisionServer, stationFault } from '../vision-server/start-vision-server.js';
import type { MqttEdgeNode } from '../mqtt/edge-node.js';
import { startMqttEdgeNode } from '../mqtt/start-edge-node.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { ModelLifecycle } from '../registry/lifecycle.js';
import { RegistryState } from '../registry/registry-state.js';
import { modelRpcHandlers } from '../registry/rpc-handlers.js';
import { runnerOptions } from './runner-options.js';
import { calibrationRpcHandlers, type CalibrationReloadResult } from './calibration-reload.js';
import { failStaleExports } from '../export/export-registry.js';

export class Station {
  readonly startedAt = Date.now();
  private loopDone: Promise<void> | null = null;
  private server: ServerHost | null = null;
  /** periodic image retention (off the hot path, in its own worker); null when disabled */
  retention: RetentionScheduler | null = null;
  /** the OPC 40100 vision server (its own worker); null when visionServer.enabled is false */
  vision: VisionServerHost | null = null;
  /** the MQTT Sparkplug B edge node (its own worker, tailing the results database); null when mqtt.enabled is false */
  mqtt: MqttEdgeNode | null = null;
  /** model registry lifecycle: push/promote/shadow/rollback (set during start) */
  models!: ModelLifecycle;
  /** calibration re-loads run one after another, in the order they were asked for */
  private calibrationChain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly config: StationConfig,
    readonly runId: string,
    readonly source: CaptureHost,
    /** the live model; replaced by a promotion or rollback (ModelLifecycle) */
    public runner: ModelRunner,
    readonly plc: PlcLink,
    readonly store: ResultStore,
    readonly images: ImageWriter,
    readonly metrics: StationMetrics,
    readonly alarms: Alarms,
    readonly loop: PartLoop,
    /** the gate's outcomes read back from the PLC into the rows */
    readonly outcomes: PlcOutcomes,
    private readonly log: Logger,
    /** the calibration in force: what every model runner is built with (runner-options.ts); replaced by reloadCalibration() */
    public calibration: StationCalibration,
    private readonly inputRing: FrameRing['buffers'],
  ) {}

  /** Options for a model runner from the station's current state (config + the calibration in force). */
  runnerOptions(packageDir: string, background = false): ReturnType<typeof runnerOptions> {
    return runnerOptions(this.config, this.incoming ?? this.calibration, {
      packageDir, background, inputRing: this.inputRing, logger: this.log.child({ mod: 'inference' }),
    });
  }

  static async start(config: StationConfig, log: Logger): Promise<Station> {
    const runId = new Date().toISOString().replace(/[:.]/g, '-');
    const { camera, model, plc: plcCfg, results } = config;
    mkdirSync(dirname(resolve(results.dbPath)), { recursive: true });
    // the hot path above the rest, before any thread exists to inherit the main thread's priority
    if (config.station.hotPathNice !== null) {
      const r = raiseHotPath(config.station.hotPathNice);
      if (r.raised) log.info({ nice: r.nice }, 'hot path raised: main, capture and live inference threads; the other workers at the base');
      else log.warn({ asked: config.station.hotPathNice, nice: r.nice, reason: r.reason },
        'could not raise the hot path\'s priority (needs CAP_SYS_NICE or LimitNICE= in the systemd unit): every thread runs at the base nice');
    }

    // the model first: a bad package is a coded error before anything else opens.
    // The inference worker reads frames straight from the capture ring.
    const ring = FrameRing.allocate(RING_SLOTS, camera.width * camera.height);
    // lens (undistortion in the inference worker), ROI and focus/exposure reference (drift alarms)
    const calibration = StationCalibration.load(config.calibration, { width: camera.width, height: camera.height }, log.child({ mod: 'calibration' }));
    // the registry's live model when it has one, else the configured package
    const registryState = RegistryState.open(config.registry.statePath);
    const initial = await ModelLifecycle.initialPackage(config, registryState);
    const runner = await ModelRunner.create(runnerOptions(config, calibration, {
      packageDir: initial.dir, inputRing: ring.buffers, logger: log.child({ mod: 'inference' }),
    }));
    const cleanup: Array<() => Promise<unknown>> = [() => runner.close()];
    try {
      const store = await ResultStore.open({ dbPath: results.dbPath, logger: log.child({ mod: 'store' }) });
      cleanup.push(() => store.close());
      store.startRun(runId, redactVisionSecrets(redactPlcSecrets(config)));
      const images = await ImageWriter.create({
        dir: results.imagesDir, slotBytes: camera.width * camera.height, slots: results.imageSlots,
        width: camera.width, height: camera.height, mapBytes: 4 * runner.mapWidth * runner.mapHeight,
        logger: log.child({ mod: 'images' }), format: 'png', compressionLevel: results.pngCompressionLevel,
      });
      cleanup.push(() => images.close());
      images.on('written', (w: { seq: number; runId: string; imagePath: string; anomalyMapPath: string | null }) =>
        store.update(w.seq, w.runId, { imagePath: w.imagePath, anomalyMapPath: w.anomalyMapPath }));

      const plc = new PlcLink({
        endpoint: plcCfg.endpoint, nodeIds: { ...defaultPlcNodeIds, ...plcCfg.nodeIds }, heartbeatMs: plcCfg.heartbeatMs,
        certificateFolder: plcCfg.certificateFolder, reconnect: plcCfg.reconnect, logger: log.child({ mod: 'plc' }),
        security: plcCfg.security, user: plcCfg.user,
      });
      cleanup.push(() => plc.stop());

      let metrics: StationMetrics | null = null;
      const alarms = new Alarms(log.child({ mod: 'alarms' }), (name, raised) => metrics?.setAlarm(name, raised));
      const source = new CaptureHost({
        template: camera.template, width: camera.width, height: camera.height, rate: camera.rate,
        folder: camera.folder, cacheDir: camera.cacheDir, device: camera.device, ip: camera.ip, url: camera.url,
        photoEyePort: camera.photoEyePort, triggerPort: camera.triggerPort, restart: camera.restart, firstFrameTimeoutMs: camera.firstFrameTimeoutMs,
        stallTimeoutMs: camera.stallTimeoutMs, logger: log.child({ mod: 'capture' }),
      }, log.child({ mod: 'capture' }), ring, calibration.captureChecks, { testHooks: faultInjectionEnabled() }); // testHooks: the soak's camera-loss only
      cleanup.push(() => source.stop());
      const snapshot = (): CountersSnapshot => ({ camera: { ...source.stats }, plc: { ...plc.counters }, images: { ...images.stats } });
      metrics = new StationMetrics(snapshot, { station: config.station.name });
      const retention = config.retention.enabled ? RetentionScheduler.start({
        ...config.retention, imagesDir: results.imagesDir, resultsDbPath: results.dbPath,
        reviewDbPath: reviewDbPathFor(results.dbPath), store, registry: metrics.registry, logger: log.child({ mod: 'retention' }),
      }) : null;
      cleanup.push(async () => retention?.close());

      const plcAlarm = watchPlcLink(plc, alarms, plcCfg.endpoint); // the detail carries the link's last (coded) error
      let current = calibration; // replaced by a calibration re-load: the new reference judges the next samples
      source.on('checks', (c: Parameters<StationCalibration['onChecks']>[0]) => current.onChecks(c, {
        setAlarm: (name, raised, detail) => alarms.set(Alarm[name], raised, detail), setChecks: (v) => metrics?.setImageChecks(v) }));
      source.on('state', (s: string) => alarms.set(Alarm.CAMERA_DOWN, s === 'restarting' || s === 'stopped', `camera ${s}`));
      // every supervised worker's death is an alarm (WORKER_RESTART) and a metric
      const workerDeaths = new WorkerDeaths(metrics.registry, alarms);
      workerDeaths.watch('capture', source);
      workerDeaths.watch('images', images);
      workerDeaths.watch('store', store);
      if (retention) {
        workerDeaths.watch('retention', retention);
        // DISK_LOW before the budget is reached (hysteresis in the pacer); /health says degraded while raised
        retention.on('disk', (d: DiskStatus) => alarms.set(Alarm.DISK_LOW, d.low, diskLowDetail(d)));
      }
      const watchRunner = (r: ModelRunner): void => {
        r.on('error', (err: Error & { code?: string }) => alarms.set(Alarm.MODEL_DOWN, true, `${err.code ?? 'ERROR'}: ${err.message}`));
        workerDeaths.watch('inference', r);
      };
      watchRunner(runner);

      // part identity: the PLC's numbering is read at every (re)connect before any result is sent
      const identity = new PartIdentity(partIdMode(config));
      plc.on('sync', (s: { epoch: number; lastPartId: number; previousEpoch: number | null }) => {
        identity.onSync(s.epoch, s.lastPartId);
        if (s.previousEpoch !== null && s.previousEpoch !== s.epoch) {
          log.warn({ epoch: s.epoch, previousEpoch: s.previousEpoch }, 'the PLC renumbered its parts (restart): parts of the old epoch are not sent');
        }
      });
      await plc.start();
      plcAlarm();

      const loop = new PartLoop(runner, plc, store, images, metrics, alarms, {
        runId, budgetMs: config.station.budgetMs, saveImages: results.saveImages, identity,
        passSampleEvery: results.passSampleEvery, doubtMargin: results.doubtMargin,
      });
      loop.log = log.child({ mod: 'part-loop' });
      // every part gets its row: those the camera could not deliver too
      source.on('lost', (p: Parameters<PartLoop['lost']>[0]) => loop.lost(p));
      source.on('dropped', (f: Parameters<PartLoop['droppedFrame']>[0]) => loop.droppedFrame(f));
      const outcomes = new PlcOutcomes({ plc, store, identity, nextSeq: () => loop.nextSeq(), runId, alarms, intervalMs: plcCfg.outcomesIntervalMs,
        log: log.child({ mod: 'plc-outcomes' }) });
      cleanup.push(() => outcomes.stop());
      const station = new Station(config, runId, source, runner, plc, store, images, metrics, alarms, loop, outcomes, log, calibration, ring.buffers);
      station.retention = retention;
      station.onCalibration = (c) => { current = c; };
      metrics.setCalibration(calibration.version, calibration.undistort !== null);
      station.models = new ModelLifecycle({
        config, runId, loop, store, images, logger: log.child({ mod: 'models' }),
        runnerOptions: (dir, background) => station.runnerOptions(dir, background),
        calibrationVersion: () => station.calibration.version,
        // the image writer's map slots follow the live model's map size (before its first part)
        onLive: (r) => { watchRunner(r); images.fitMaps(r.mapWidth * r.mapHeight); station.runner = r; },
      }, registryState, runner, initial.ref);
      await station.models.adoptStartPackage(runner, initial.dir);
      // exports a dead server left 'running' are failed (their parts released for retention) before new ones can start
      if (config.server.enabled) {
        try {
          failStaleExports(reviewDbPathFor(results.dbPath), 'interrupted: the station stopped while the export ran', log);
        } catch (err) {
          log.error({ err }, 'could not check for interrupted exports'); // the line runs; the server reports the database itself
        }
      }
      if (config.mqtt.enabled) { // before the camera: a first start's cursor is the last row stored before this run's parts
        const mqtt = await startMqttEdgeNode(config, station, metrics.registry, alarms, log.child({ mod: 'mqtt' }), faultInjectionEnabled());
        station.mqtt = mqtt;
        cleanup.push(() => mqtt.close());
        workerDeaths.watch('mqtt', mqtt);
      }
      // the server before the camera: a camera streaming while the rest still starts gives parts nobody can judge
      if (config.server.enabled) {
        station.server = await startStationServer(station, log.child({ mod: 'server' }));
        cleanup.push(async () => station.server?.close());
        if (station.loop.feed instanceof LiveFeed) station.loop.feed.operator = () => operatorStatus(station);
        workerDeaths.watch('server', station.server);
        for (const [method, fn] of Object.entries(modelRpcHandlers(station.models))) station.server.handle(method, fn);
        for (const [method, fn] of Object.entries(calibrationRpcHandlers(station, log.child({ mod: 'calibration' })))) station.server.handle(method, fn);
      }
      if (config.visionServer.enabled) { // before the camera too: its result tail starts at the first part
        const vision = await startVisionServer(config, runId, { inspection: loop, recipes: station.models, fault: () => stationFault(alarms) },
          log.child({ mod: 'vision-server' }));
        station.vision = vision;
        cleanup.push(() => vision.close());
        workerDeaths.watch('vision-server', vision);
      }
      outcomes.start();
      // the camera last, then Ready: the PLC (interlocked on Station.Ready) sends no part before everything can judge it
      await source.start();
      station.loopDone = loop.run(source);
      // a triggered camera rehearses the whole path before Ready (rehearsal.ts): the first parts find it warm
      if (loadPipelineTemplate(camera.template).trigger) {
        station.rehearsal = await rehearseLine(source, loop, DEFAULT_REHEARSAL, log.child({ mod: 'rehearsal' }));
      }
      await plc.setReady(true);
      log.info({ runId, model: `${runner.modelName}@${runner.modelVersion}`, provider: runner.provider, camera: camera.template,
        plc: plc.state, http: station.server?.address }, 'station running');
      return station;
    } catch (err) {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      throw err;
    }
  }

  get httpAddress(): string | null { return this.server?.address ?? null; }
  /** SHA-256 fingerprint of the HTTPS certificate served (null: plain HTTP or no server) */
  get httpsFingerprint(): string | null { return this.server?.tls?.fingerprint256 ?? null; }

  /** what the line rehearsal before Ready did (null: the camera cannot rehearse) */
  rehearsal: RehearsalSummary | null = null;

  /** set by stop(): later calibration re-loads are ignored (their runners would outlive the station) */
  private stopping = false;

  /** a calibration being put in force: the runners re-loaded for it are built with it */
  private incoming: StationCalibration | null = null;

  /** set during start: the drift-check listener follows the calibration in force */
  private onCalibration: (c: StationCalibration) => void = () => undefined;

  /**
   * Re-read the calibration folder and put its current version in force without a restart:
   * the drift checks judge against its reference at once, and the capture worker samples them
   * with its ROI (and the check interval) from the next frame; when its lens differs, the live
   * model (and the shadow, if any) is re-loaded with the new undistortion table and swapped
   * between two parts as a promotion is (ModelLifecycle.reloadForCalibration). Re-loads run
   * one after another. A runner that fails to start leaves the previous calibration in force.
   */
  reloadCalibration(why: string): Promise<CalibrationReloadResult> {
    const next = this.calibrationChain.catch(() => undefined).then(() => this.applyCalibration(why));
    this.calibrationChain = next;
    return next;
  }

  private async applyCalibration(why: string): Promise<CalibrationReloadResult> {
    const { camera } = this.config;
    const prev = this.calibration;
    const next = StationCalibration.load(this.config.calibration, { width: camera.width, height: camera.height }, this.log.child({ mod: 'calibration' }));
    const lensChanged = next.lensKey !== prev.lensKey;
    if (this.stopping) throw new Error('the station is stopping: calibration not re-loaded');
    let models: { live: string; shadow: string | null } | null = null;
    if (lensChanged) {
      this.incoming = next; // runnerOptions() builds the re-loaded runners with it
      try {
        models = await this.models.reloadForCalibration(`calibration v${next.version ?? 'none'} (${why})`);
      } catch (err) {
        this.log.error({ err, version: next.version, kept: prev.version }, 'new calibration not applied: a model runner failed to start with it');
        throw err;
      } finally {
        this.incoming = null;
      }
    }
    // in force from here: the live model runs with it (health, metrics, the drift reference)
    this.calibration = next;
    this.onCalibration(next);
    // the capture worker samples focus/exposure with the new ROI / interval from its next frame;
    // samples still in flight with the old ROI are not emitted (CaptureHost.updateChecks)
    this.source.updateChecks(next.captureChecks);
    this.metrics.setCalibration(next.version, next.undistort !== null);
    this.log.info({ from: prev.version, to: next.version, lensChanged, undistort: next.undistort !== null, models, why }, 'calibration in force');
    return { version: next.version, previous: prev.version, lensChanged, undistort: next.undistort !== null, models };
  }

  health(): HealthReport {
    return buildHealth(this);
  }

  /** Stop the camera and let the last part's verdict reach the PLC (the station stays up). */
  async stopCapture(): Promise<void> {
    this.source.removeAllListeners('state'); // a camera stopped on purpose is not an alarm
    await this.source.stop();
    await this.loopDone;
    await this.loop.drain();
  }

  /**
   * Read the PLC's outcomes until every part the station accounted for has its gate outcome in
   * its row, or `maxMs` (the last gate windows close after capture stops). Bounded: never hangs a stop.
   */
  async settleOutcomes(maxMs = 2000): Promise<void> {
    const until = Date.now() + maxMs;
    const gateMs = this.outcomes.counters?.GateWindowMs ?? 100;
    await new Promise((r) => setTimeout(r, gateMs + 50)); // the last windows close
    for (;;) {
      await this.outcomes.poll();
      if (this.outcomes.pendingUpTo(this.loop.identity) === 0 || Date.now() >= until) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stop capture, let the last verdicts reach the PLC, flush every record, then close. */
  async stop(): Promise<void> {
    await this.plc.setReady(false).catch(() => undefined); // the PLC holds the line before the camera goes
    await this.stopCapture();
    if (this.plc.state === 'connected') await this.settleOutcomes().catch(() => undefined);
    await this.outcomes.stop();
    await this.retention?.close();
    this.stopping = true;
    await this.calibrationChain.catch(() => undefined); // a re-load in progress finishes its swap first
    await this.models.close();
    await this.vision?.close();
    await this.server?.close();
    await this.images.close();
    await this.store.close();
    await this.mqtt?.close(); // after the store: its last rows are published (bounded by mqtt.closeDrainMs), then NDEATH
    this.plc.removeAllListeners('state'); // a link closed on purpose is not an alarm
    await this.plc.stop();
    await this.runner.close();
    lowerHotPath();
    this.log.info({ parts: this.loop.rec.parts }, 'station stopped');
  }
}

/** Live's operator panel from the live objects (the feed adds the last rejects). */
function operatorStatus(s: Station): Omit<OperatorStatus, 'lastRejects'> {
  const im = s.images.stats;
  return { disk: s.retention?.disk() ?? null, images: { offered: im.offered, written: im.written, dropped: im.dropped, failed: im.failed },
    plc: s.outcomes.counters, ready: s.plc.ready };
}
