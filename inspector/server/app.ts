/**
 * The station's Fastify app. Plugins are registered in the order
 * external → app → routes:
 *   external  security (helmet headers + CSP, WebSocket Origin check, upload length), cookie,
 *             rate-limit, websocket, multipart, swagger (+ UI at /docs), static ui/dist
 *   app       the station view, coded errors, the review store, auth (request.user,
 *             app.requireRole), the audit trail (app.audit)
 *   routes    the plugins listed in routes/index.ts, in order
 * Every route carries a TypeBox schema; errors are coded (@fastify/error) and
 * bad input is a 4xx, never a 500.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import type { Logger } from '../core/logger.js';
import type { LiveModelInfo, StationView } from './station-view.js';
import { ReviewStore } from '../review/review-store.js';
import { BAD_MULTIPART, registerExternal } from './plugins/external.js';
import { uploadLimits, type UploadLimits } from './plugins/security.js';
import { DEFAULT_LOCKOUT, DEFAULT_TOKEN_TTL_DAYS, type LockoutPolicy } from '../review/accounts.js';
import { authPlugin } from './plugins/auth.js';
import { auditPlugin } from './plugins/audit.js';
import { routes } from './routes/index.js';
import { LiveHub } from './live-hub.js';
import { PartRenderer } from './routes/part-render.js';
import { BadRequestError } from './errors.js';

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
  /** per-account lockout with backoff, on top of the per-IP limit */
  loginLockout: LockoutPolicy;
  /** a bearer token's life when the caller names none (days) */
  tokenTtlDays: number;
  /** multipart upload limits (model packages, calibration images) */
  uploads: UploadLimits;
  /** origins besides the request's own host that may open the WebSocket (a reverse proxy's public name) */
  allowedOrigins: string[];
  /** the time for the login lockout (epoch ms); tests move it */
  clock: () => number;
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
    /** bounded, cached rendering of part pictures in one low-priority worker (routes/part-render.ts) */
    partRender: PartRenderer;
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
  /** per-account lockout (default DEFAULT_LOCKOUT: 5 free failures, 30 s doubling to 15 min) */
  loginLockout?: Partial<LockoutPolicy>;
  /** default bearer token life, days (default 90) */
  tokenTtlDays?: number;
  /** upload limits (default: INSPECTOR_UPLOAD_MAX_FILE_MB / _MAX_FILES / _MAX_TOTAL_MB, else DEFAULT_UPLOAD_LIMITS) */
  uploads?: Partial<UploadLimits>;
  /** extra WebSocket origins (default: INSPECTOR_ALLOWED_ORIGINS, comma-separated) */
  allowedOrigins?: string[];
  /** clock of the login lockout (tests) */
  clock?: () => number;
  /** folder with the built UI; default <repo>/ui/dist */
  uiDir?: string;
  /** the live model when `view.call` is absent (tests) */
  model?: LiveModelInfo;
  /** where live messages arrive (default: a new hub) */
  live?: LiveHub;
  liveFrameBuffer?: SharedArrayBuffer;
  /** the station's calibration folder (config calibration.dir) */
  calibrationDir?: string;
  /** serve HTTPS with this certificate and key (PEM; server/tls.ts); absent: plain HTTP */
  https?: { cert: string; key: string };
}

/** The path of the first number that is not finite in a parsed request part ('' for the part itself), or null. */
function nonFinite(v: unknown, depth: number): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : '';
  if (v === null || typeof v !== 'object' || depth > 64 || Buffer.isBuffer(v)) return null;
  for (const [k, x] of Object.entries(v)) {
    const bad = nonFinite(x, depth + 1);
    if (bad !== null) return `/${k}${bad}`;
  }
  return null;
}

/** App layer: the station view, the coded error format, the review store, auth and audit. */
const appPlugin = fp<{ view: StationView; review: ReviewStore; settings: ServerSettings; live: LiveHub; liveFrameBuffer: SharedArrayBuffer | null }>(async (app, opts) => {
  app.decorate('station', opts.view);
  app.decorate('live', opts.live);
  app.decorate('liveFrameBuffer', opts.liveFrameBuffer);
  app.decorate('review', opts.review);
  app.decorate('settings', opts.settings);
  const partRender = new PartRenderer();
  app.decorate('partRender', partRender);
  app.addHook('onClose', async () => partRender.close());
  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, req, reply) => {
    // an upload cut short or malformed is the client's: busboy's and the stream's own errors carry no status
    if ((err.statusCode ?? 500) >= 500 && !err.code?.startsWith('INSPECTOR_') && req.isMultipart?.()
      && (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || /terminated early|unexpected end|malformed|boundary/i.test(err.message))) {
      err = Object.assign(new Error(`the multipart body is cut short or malformed: ${err.message}`), { statusCode: 400, code: BAD_MULTIPART });
    }
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
  // Ajv's coercion lets "Infinity", "1e400" (and JSON's 1e400) through integer and number checks,
  // bounds included: no route is ever handed a number that is not finite
  app.addHook('preHandler', async (req) => {
    for (const [where, v] of [['querystring', req.query], ['params', req.params], ['body', req.body]] as const) {
      const bad = nonFinite(v, 0);
      if (bad !== null) throw new BadRequestError(`${where}${bad} must be a finite number`);
    }
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
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' as const } } : {}),
    // errors the router raises before any hook (a malformed %-escape in the path): coded like the rest
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).status(status).send({ statusCode: status, code: `INSPECTOR_${(err.code ?? 'BAD_REQUEST').replace(/^FST_(ERR_)?/, '')}`, error: err.name, message: err.message });
    },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;
  const settings: ServerSettings = {
    imagesDir: opts.imagesDir ?? null,
    doubtMargin: opts.doubtMargin ?? 0.15,
    stationClasses: opts.stationClasses ?? [],
    cookieSecure: opts.cookieSecure ?? true,
    loginRateLimit: opts.loginRateLimit ?? { max: 10, timeWindowMs: 60_000 },
    loginLockout: { ...DEFAULT_LOCKOUT, ...opts.loginLockout },
    tokenTtlDays: opts.tokenTtlDays ?? DEFAULT_TOKEN_TTL_DAYS,
    uploads: uploadLimits(opts.uploads),
    allowedOrigins: opts.allowedOrigins ?? (process.env.INSPECTOR_ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    clock: opts.clock ?? Date.now,
    resultsDbPath: opts.resultsDbPath ?? null,
    reviewDbPath: opts.reviewDbPath ?? ':memory:',
    model: opts.model ?? null,
    calibrationDir: opts.calibrationDir ?? null,
  };
  const review = new ReviewStore({ reviewDbPath: settings.reviewDbPath, resultsDbPath: opts.resultsDbPath });
  await registerExternal(app, { uiDir: opts.uiDir, uploads: settings.uploads, allowedOrigins: settings.allowedOrigins });
  await app.register(appPlugin, { view: opts.view, review, settings, live: opts.live ?? new LiveHub(), liveFrameBuffer: opts.liveFrameBuffer ?? null });
  for (const plugin of routes) await app.register(plugin);
  await app.ready();
  return app;
}
