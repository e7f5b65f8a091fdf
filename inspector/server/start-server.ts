/**
 * Start the station's HTTP server (worker thread) with everything it needs:
 * database and image paths, the RPC handlers (health, metrics, model,
 * liveFrame) and the live feed the part loop fills. Keeps station.ts short.
 */
import { resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { Station } from '../station/station.js';
import { lineReport } from '../station/health.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { ServerHost } from './server-host.js';
import { LiveFeed } from './live-feed.js';
import type { LiveModelInfo } from './station-view.js';

export async function startStationServer(station: Station, log: Logger): Promise<ServerHost> {
  const { config } = station;
  const feed = LiveFeed.allocate(station.runId, config.camera.width, config.camera.height);
  const model = (): LiveModelInfo => {
    const r = station.runner;
    return { name: r.modelName, version: r.modelVersion, threshold: r.threshold, outputs: (r.manifest as { outputs?: unknown }).outputs ?? null };
  };
  /** the live runner's package: the registry's copy when the registry has it, else the configured folder */
  const livePackageDir = async (): Promise<string> => {
    const ref = { name: station.runner.modelName, version: station.runner.modelVersion };
    const registry = station.models?.registry;
    return registry && await registry.has(ref) ? registry.dirOf(ref) : resolve(config.model.packageDir);
  };
  const host = await ServerHost.start({
    host: config.server.host, port: config.server.port, liveFrameBuffer: feed.frameBuffer,
    app: {
      resultsDbPath: resolve(config.results.dbPath), reviewDbPath: reviewDbPathFor(config.results.dbPath),
      imagesDir: resolve(config.results.imagesDir), doubtMargin: config.results.doubtMargin,
      stationClasses: config.station.defectClasses, calibrationDir: resolve(config.calibration.dir),
      cookieSecure: config.server.secureCookies,
    },
  }, {
    health: () => Promise.resolve(station.health()),
    metrics: () => station.metrics.text(),
    model: async () => ({ ...model(), packageDir: await livePackageDir() }),
    liveFrame: () => feed.nextFrame(),
  }, log);
  // /metrics: the PLC's outcome counters beside the station's, read at scrape time (nothing per part)
  station.metrics.watchLine(() => lineReport(station));
  station.loop.feed = feed;
  feed.start((m) => host.post(m), () => station.health());
  host.onClose(() => { feed.stop(); station.loop.feed = null; });
  return host;
}
