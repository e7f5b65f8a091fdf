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
import { loadServerTls, pinCommand } from './tls.js';

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
  // HTTPS unless the config says 'off': the certificate is made (first start) or read before the worker starts
  const tls = await loadServerTls(config.server.tls, { pkiFolder: config.plc.certificateFolder, host: config.server.host });
  const host = await ServerHost.start({
    host: config.server.host, port: config.server.port, liveFrameBuffer: feed.frameBuffer,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    app: {
      resultsDbPath: resolve(config.results.dbPath), reviewDbPath: reviewDbPathFor(config.results.dbPath),
      imagesDir: resolve(config.results.imagesDir), doubtMargin: config.results.doubtMargin,
      stationClasses: config.station.defectClasses, calibrationDir: resolve(config.calibration.dir),
      cookieSecure: tls ? true : config.server.secureCookies, // over HTTPS the session cookie is always Secure
    },
  }, {
    health: () => Promise.resolve(station.health()),
    metrics: () => station.metrics.text(),
    model: async () => ({ ...model(), packageDir: await livePackageDir() }),
    liveFrame: () => feed.nextFrame(),
  }, log);
  if (tls) {
    host.tls = { fingerprint256: tls.fingerprint256, source: tls.source, certFile: tls.certFile };
    if (tls.created) log.warn({ certFile: tls.certFile, why: tls.created }, 'made a new self-signed HTTPS certificate: clients that pinned the old one must pin this one');
    log.info({ fingerprint: `SHA256:${tls.fingerprint256}`, certFile: tls.certFile, names: tls.subjectAltName, validTo: tls.validTo, pin: pinCommand(host.address, tls.fingerprint256) },
      `https certificate SHA-256 ${tls.fingerprint256} (pin it: ${pinCommand(host.address, tls.fingerprint256)})`);
  } else {
    log.warn({ address: host.address }, 'server.tls.mode is off: the UI and API are plain HTTP (passwords and tokens in clear)');
  }
  // /metrics: the PLC's outcome counters beside the station's, read at scrape time (nothing per part)
  station.metrics.watchLine(() => lineReport(station));
  station.loop.feed = feed;
  feed.start((m) => host.post(m), () => station.health());
  host.onClose(() => { feed.stop(); station.loop.feed = null; });
  return host;
}
