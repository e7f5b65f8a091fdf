/**
 * The station's Fastify app. Plugins are registered in the order
 * external → app → routes:
 *   external  cookie, rate-limit, websocket, multipart, swagger (+ UI at /docs), static ui/dist
 *   app       the station view, coded errors, the review store, auth (request.user,
 *             app.requireRole), the audit trail (app.audit)
 *   routes    the plugins listed in routes/index.ts, in order
 * Every route carries a TypeBox schema; errors are coded (@fastify/error) and
 * bad input is a 4xx, never a 500.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import type { Logger } from '../core/logger.js';
import type { LiveModelInfo, StationView } from './station-view.js';
import { ReviewStore } from '../review/review-store.js';
import { registerExternal } from './plugins/external.js';
import { authPlugin } from './plugins/auth.js';
import { auditPlugin } from './plugins/audit.js';
import { routes } from './routes/index.js';
import { LiveHub } from './live-hub.js';

/** Settings the routes read (paths, review rules, login limits). */
export interface ServerSettings {
  /** folder the image writer's relative paths start from (results.imagesDir) */
  imagesDir: string | null;
  /** passes whose score is within this of the threshold are "doubtful" (results.doubtMargin) */
  doubtMargin: number;
  /** defect classes configured on the station (added to the live model's classes) */
  stationClasses: string[];
  /** `Secure` flag on the session cookie */
  cookieSecure: boolean;
  /** login attempts per IP per window */
  loginRateLimit: { max: number; timeWindowMs: number };
  /** folder of the station's var/ data (results db, review db, images) */
  resultsDbPath: string | null;
  reviewDbPath: string;
  /** the live model when there is no station to ask (tests) */
  model: LiveModelInfo | null;
  /** the station's calibration folder (calibration/calibration-file.ts); null: calibration routes answer 409 */
  calibrationDir: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    station: StationView;
    review: ReviewStore;
    settings: ServerSettings;
    /** live feed fan-out (the server worker publishes what the station posts) */
    live: LiveHub;
    /** the station's shared newest-frame buffer (server worker), or null */
    liveFrameBuffer: SharedArrayBuffer | null;
  }
}

export interface AppOptions {
  view: StationView;
  logger: Logger | false;
  /** review database (accounts, labels, audit); default ':memory:' (tests) */
  reviewDbPath?: string;
  /** results database to query (read-only); absent: review queries answer 503 */
  resultsDbPath?: string;
  imagesDir?: string;
  doubtMargin?: number;
  stationClasses?: string[];
  cookieSecure?: boolean;
  loginRateLimit?: { max: number; timeWindowMs: number };
  /** folder with the built UI; default <repo>/ui/dist */
  uiDir?: string;
  /** the live model when `view.call` is absent (tests) */
  model?: LiveModelInfo;
  /** where live messages arrive (default: a new hub) */
  live?: LiveHub;
  liveFrameBuffer?: SharedArrayBuffer;
  /** the station's calibration folder (config calibration.dir) */
  calibrationDir?: string;
}

/** App layer: the station view, the coded error format, the review store, auth and audit. */
const appPlugin = fp<{ view: StationView; review: ReviewStore; settings: ServerSettings; live: LiveHub; liveFrameBuffer: SharedArrayBuffer | null }>(async (app, opts) => {
  app.decorate('station', opts.view);
  app.decorate('live', opts.live);
  app.decorate('liveFrameBuffer', opts.liveFrameBuffer);
  app.decorate('review', opts.review);
  app.decorate('settings', opts.settings);
  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, _req, reply) => {
    const status = err.validation ? 400 : (err.statusCode ?? 500);
    const code = err.validation ? 'INSPECTOR_BAD_REQUEST'
      : err.code?.startsWith('INSPECTOR_') ? err.code
        : status < 500 ? `INSPECTOR_${(err.code ?? 'BAD_REQUEST').replace(/^FST_(ERR_)?/, '')}` : 'INSPECTOR_UNEXPECTED';
    if (status >= 500) reply.log.error({ err }, 'request failed');
    void reply.status(status).send({ statusCode: status, code, error: err.name, message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ statusCode: 404, code: 'INSPECTOR_NOT_FOUND', error: 'Not Found', message: `${req.method} ${req.url} not found` });
  });
  await app.register(authPlugin, { accounts: opts.review.accounts });
  await app.register(auditPlugin, { log: opts.review.audit });
  app.addHook('onClose', async () => opts.review.close());
  app.addHook('preClose', async () => opts.live.close());
}, { name: 'inspector-app' });

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger || undefined,
    logger: opts.logger ? undefined : false,
    disableRequestLogging: true,
    bodyLimit: 1 << 20,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;
  const settings: ServerSettings = {
    imagesDir: opts.imagesDir ?? null,
    doubtMargin: opts.doubtMargin ?? 0.15,
    stationClasses: opts.stationClasses ?? [],
    cookieSecure: opts.cookieSecure ?? true,
    loginRateLimit: opts.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 },
    resultsDbPath: opts.resultsDbPath ?? null,
    reviewDbPath: opts.reviewDbPath ?? ':memory:',
    model: opts.model ?? null,
    calibrationDir: opts.calibrationDir ?? null,
  };
  const review = new ReviewStore({ reviewDbPath: settings.reviewDbPath, resultsDbPath: opts.resultsDbPath });
  await registerExternal(app, { uiDir: opts.uiDir });
  await app.register(appPlugin, { view: opts.view, review, settings, live: opts.live ?? new LiveHub(), liveFrameBuffer: opts.liveFrameBuffer ?? null });
  for (const plugin of routes) await app.register(plugin);
  await app.ready();
  return app;
}
