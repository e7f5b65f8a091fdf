/**
 * A running station: camera → model → PLC, with results, images, metrics,
 * health and the HTTP server around it. `Station.start()` brings the parts up
 * in an order where a failure says exactly what is wrong (a bad model package
 * fails before the camera is opened), and `stop()` takes them down without
 * losing a result.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { StationConfig } from './config.js';
import { CaptureHost, RING_SLOTS } from '../capture/capture-host.js';
import { FrameRing } from '../capture/frame-ring.js';
import { ModelRunner } from '../inference/model-runner.js';
import { PlcLink } from '../plc/plc-link.js';
import { defaultPlcNodeIds } from '../plc/plc-contract.js';
import { ResultStore } from '../results/result-store.js';
import { ImageWriter } from '../results/image-writer.js';
import { StationMetrics, type CountersSnapshot } from './metrics.js';
import { Alarm, Alarms } from './alarms.js';
import { PartLoop } from './part-loop.js';
import { buildHealth } from './health.js';
import { StationCalibration } from '../../calibration/station-calibration.js';
import type { ServerHost } from '../server/server-host.js';
import { startStationServer } from '../server/start-server.js';
import type { HealthReport } from '../server/station-view.js';
import { RetentionScheduler } from '../retention/retention-scheduler.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { ModelLifecycle } from '../registry/lifecycle.js';
import { RegistryState } from '../registry/registry-state.js';
import { modelRpcHandlers } from '../registry/rpc-handlers.js';

export class Station {
  readonly startedAt = Date.now();
  private loopDone: Promise<void> | null = null;
  private server: ServerHost | null = null;
  /** periodic image retention (off the hot path, in its own worker); null when disabled */
  retention: RetentionScheduler | null = null;
  /** model registry lifecycle: push/promote/shadow/rollback (set during start) */
  models!: ModelLifecycle;

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
    private readonly log: Logger,
  ) {}

  static async start(config: StationConfig, log: Logger): Promise<Station> {
    const runId = new Date().toISOString().replace(/[:.]/g, '-');
    const { camera, model, plc: plcCfg, results } = config;
    mkdirSync(dirname(resolve(results.dbPath)), { recursive: true });

    // the model first: a bad package is a coded error before anything else opens.
    // The inference worker reads frames straight from the capture ring.
    const ring = FrameRing.allocate(RING_SLOTS, camera.width * camera.height);
    // lens (undistortion in the inference worker), ROI and focus/exposure reference (drift alarms)
    const calibration = StationCalibration.load(config.calibration, { width: camera.width, height: camera.height }, log.child({ mod: 'calibration' }));
    // the registry's live model when it has one, else the configured package
    const registryState = RegistryState.open(config.registry.statePath);
    const initial = await ModelLifecycle.initialPackage(config, registryState);
    const runner = await ModelRunner.create({
      packageDir: initial.dir, frame: { width: camera.width, height: camera.height },
      providers: model.providers, intraOpNumThreads: model.intraOpNumThreads, warmupRuns: model.warmupRuns,
      // shared, not transferred: an ArrayBuffer arriving back on the main thread counts as a fresh
      // 1.3 MB external allocation there, and at 100 parts/s that kept V8 in back-to-back mark-compacts
      transport: 'shared', inputRing: ring.buffers, undistort: calibration.undistort,
      logger: log.child({ mod: 'inference' }),
    });
    const cleanup: Array<() => Promise<unknown>> = [() => runner.close()];
    try {
      const store = await ResultStore.open({ dbPath: results.dbPath, logger: log.child({ mod: 'store' }) });
      cleanup.push(() => store.close());
      store.startRun(runId, config);
      const images = await ImageWriter.create({
        dir: results.imagesDir, slotBytes: camera.width * camera.height, slots: results.imageSlots,
        width: camera.width, height: camera.height, mapBytes: 4 * runner.mapWidth * runner.mapHeight,
        logger: log.child({ mod: 'images' }), format: 'png', compressionLevel: results.pngCompressionLevel,
      });
      cleanup.push(() => images.close());
      images.on('written', (w: { seq: number; runId: string; imagePath: string; anomalyMapPath: string | null }) =>
        store.update(w.seq, w.runId, { imagePath: w.imagePath, anomalyMapPath: w.anomalyMapPath }));

      const plc = new PlcLink({
        endpoint: plcCfg.endpoint, nodeIds: plcCfg.nodeIds ?? defaultPlcNodeIds, heartbeatMs: plcCfg.heartbeatMs,
        certificateFolder: plcCfg.certificateFolder, reconnect: plcCfg.reconnect, logger: log.child({ mod: 'plc' }),
      });
      cleanup.push(() => plc.stop());

      let metrics: StationMetrics | null = null;
      const alarms = new Alarms(log.child({ mod: 'alarms' }), (name, raised) => metrics?.setAlarm(name, raised));
      const source = new CaptureHost({
        template: camera.template, width: camera.width, height: camera.height, rate: camera.rate,
        folder: camera.folder, cacheDir: camera.cacheDir, device: camera.device, ip: camera.ip, url: camera.url,
        photoEyePort: camera.photoEyePort, restart: camera.restart, firstFrameTimeoutMs: camera.firstFrameTimeoutMs,
        stallTimeoutMs: camera.stallTimeoutMs, logger: log.child({ mod: 'capture' }),
      }, log.child({ mod: 'capture' }), ring, calibration.captureChecks);
      cleanup.push(() => source.stop());
      const snapshot = (): CountersSnapshot => ({ camera: { ...source.stats }, plc: { ...plc.counters }, images: { ...images.stats } });
      metrics = new StationMetrics(snapshot, { station: config.station.name });
      const retention = config.retention.enabled ? RetentionScheduler.start({
        ...config.retention, imagesDir: results.imagesDir, resultsDbPath: results.dbPath,
        reviewDbPath: reviewDbPathFor(results.dbPath), store, registry: metrics.registry, logger: log.child({ mod: 'retention' }),
      }) : null;
      cleanup.push(async () => retention?.close());

      plc.on('state', (s: string) => alarms.set(Alarm.PLC_LINK_DOWN, s !== 'connected', `link ${s} (${plcCfg.endpoint})`));
      source.on('checks', (c: Parameters<StationCalibration['onChecks']>[0]) => calibration.onChecks(c, {
        setAlarm: (name, raised, detail) => alarms.set(Alarm[name], raised, detail), setChecks: (v) => metrics?.setImageChecks(v) }));
      source.on('state', (s: string) => alarms.set(Alarm.CAMERA_DOWN, s === 'restarting' || s === 'stopped', `camera ${s}`));
      const watchRunner = (r: ModelRunner): void => {
        r.on('error', (err: Error & { code?: string }) => alarms.set(Alarm.MODEL_DOWN, true, `${err.code ?? 'ERROR'}: ${err.message}`));
      };
      watchRunner(runner);

      await plc.start();
      alarms.set(Alarm.PLC_LINK_DOWN, plc.state !== 'connected', `link ${plc.state} (${plcCfg.endpoint})`);

      const loop = new PartLoop(runner, plc, store, images, metrics, alarms, {
        runId, budgetMs: config.station.budgetMs, saveImages: results.saveImages,
        passSampleEvery: results.passSampleEvery, doubtMargin: results.doubtMargin,
      });
      const station = new Station(config, runId, source, runner, plc, store, images, metrics, alarms, loop, log);
      station.retention = retention;
      station.models = new ModelLifecycle({
        config, runId, loop, store, images, inputRing: ring.buffers, logger: log.child({ mod: 'models' }),
        onLive: (r) => { watchRunner(r); station.runner = r; },
      }, registryState, runner, initial.ref);
      await station.models.adoptStartPackage(runner, initial.dir);
      await source.start();
      station.loopDone = loop.run(source);
      if (config.server.enabled) {
        station.server = await startStationServer(station, log.child({ mod: 'server' }));
        for (const [method, fn] of Object.entries(modelRpcHandlers(station.models))) station.server.handle(method, fn);
      }
      log.info({ runId, model: `${runner.modelName}@${runner.modelVersion}`, provider: runner.provider, camera: camera.template,
        plc: plc.state, http: station.server?.address }, 'station running');
      return station;
    } catch (err) {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      throw err;
    }
  }

  get httpAddress(): string | null { return this.server?.address ?? null; }

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

  /** Stop capture, let the last verdicts reach the PLC, flush every record, then close. */
  async stop(): Promise<void> {
    await this.stopCapture();
    await this.retention?.close();
    await this.models.close();
    await this.server?.close();
    await this.images.close();
    await this.store.close();
    this.plc.removeAllListeners('state'); // a link closed on purpose is not an alarm
    await this.plc.stop();
    await this.runner.close();
    this.log.info({ parts: this.loop.rec.parts }, 'station stopped');
  }
}
