/**
 * Web defences of the station's server (HTTPS is not here: it is a pass of its own):
 *  - security headers through @fastify/helmet: a strict Content-Security-Policy for the
 *    UI (scripts, styles, fonts, connections from the station itself only; the UI is one
 *    esbuild bundle with no inline script, no inline style element and no eval), no framing
 *    at all (`frame-ancestors 'none'` and `X-Frame-Options: DENY`), nosniff, no referrer.
 *    Swagger UI at /docs gets its own policy (it needs inline styles). No HSTS and no
 *    `upgrade-insecure-requests` while the station answers plain HTTP.
 *  - WebSocket routes check `Origin`: a browser page from another site cannot open the live
 *    feed with the user's cookie. Same host as the request (the UI), or one of
 *    `settings.allowedOrigins` (a reverse proxy's public name); clients that send no Origin
 *    (CLI, scripts: they hold their own credentials) are not browsers and pass.
 *  - multipart uploads must say their length (411 otherwise) and stay within
 *    `settings.uploads.totalBytes` (413 before a byte is read); per file and per file count
 *    limits are @fastify/multipart's (plugins/external.ts).
 */
import createError from '@fastify/error';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest, RouteOptions, onRequestAsyncHookHandler } from 'fastify';

export const BadOriginError = createError<[string]>('INSPECTOR_BAD_ORIGIN', 'Origin %s may not open this WebSocket', 403);
export const LengthRequiredError = createError('INSPECTOR_LENGTH_REQUIRED', 'An upload must carry a Content-Length', 411);
export const UploadTooLargeError = createError<[number, number]>('INSPECTOR_UPLOAD_TOO_LARGE', 'The upload is %d bytes; at most %d are accepted', 413);

/** What an upload may be (the model package push and the calibration image upload). */
export interface UploadLimits {
  /** one file (model.onnx is the largest part of a package) */
  fileBytes: number;
  /** files in one request: model.onnx + manifest.json + the manifest's extra files (at most 32) */
  files: number;
  /** the whole request body */
  totalBytes: number;
}

const MiB = 1 << 20;
/** Sized to real packages: an ONNX defect model of tens of MB, a manifest, a few reference images. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { fileBytes: 256 * MiB, files: 34, totalBytes: 384 * MiB };

/** Upload limits from the options, else the environment (INSPECTOR_UPLOAD_MAX_FILE_MB, _MAX_FILES, _MAX_TOTAL_MB), else the defaults. */
export function uploadLimits(opts: Partial<UploadLimits> | undefined, env: NodeJS.ProcessEnv = process.env): UploadLimits {
  const num = (v: string | undefined, scale: number): number | undefined => {
    const n = v === undefined || v === '' ? NaN : Number(v);
    return Number.isFinite(n) && n > 0 ? Math.floor(n * scale) : undefined;
  };
  return {
    fileBytes: opts?.fileBytes ?? num(env.INSPECTOR_UPLOAD_MAX_FILE_MB, MiB) ?? DEFAULT_UPLOAD_LIMITS.fileBytes,
    files: opts?.files ?? num(env.INSPECTOR_UPLOAD_MAX_FILES, 1) ?? DEFAULT_UPLOAD_LIMITS.files,
    totalBytes: opts?.totalBytes ?? num(env.INSPECTOR_UPLOAD_MAX_TOTAL_MB, MiB) ?? DEFAULT_UPLOAD_LIMITS.totalBytes,
  };
}

const self = ["'self'"];
/** The UI's policy: everything from the station itself; images may also be data: and blob: URLs (canvas, icons). */
export const UI_CSP = {
  'default-src': self, 'base-uri': self, 'script-src': self, 'script-src-attr': ["'none'"], 'style-src': self,
  'img-src': [...self, 'data:', 'blob:'], 'font-src': self, 'connect-src': self, 'object-src': ["'none'"],
  'frame-ancestors': ["'none'"], 'form-action': self, 'worker-src': self, 'manifest-src': self,
};
/** Swagger UI (/docs) sets styles inline and shows data: images. */
const DOCS_CSP = { ...UI_CSP, 'style-src': [...self, "'unsafe-inline'"] };

const helmetOptions = (directives: Record<string, string[]>) => ({
  contentSecurityPolicy: { useDefaults: false, directives },
  frameguard: { action: 'deny' as const },
  // plain HTTP for now: HSTS would pin a future HTTPS set-up before it exists
  strictTransportSecurity: false,
  referrerPolicy: { policy: 'no-referrer' as const },
});

/** Whether `origin` names the same host the request was sent to (default ports folded). */
export function sameHostOrigin(origin: string, hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    return o.host === new URL(`${o.protocol}//${hostHeader}`).host;
  } catch { return false; }
}

export interface SecurityOptions {
  uploads: UploadLimits;
  /** origins (scheme://host[:port]) besides the request's own host that may open WebSockets */
  allowedOrigins: readonly string[];
}

export async function registerSecurity(app: FastifyInstance, opts: SecurityOptions): Promise<void> {
  await app.register(helmet, helmetOptions(UI_CSP));
  const allowed = new Set(opts.allowedOrigins.map((o) => { try { return new URL(o).origin; } catch { return o; } }));

  const checkOrigin: onRequestAsyncHookHandler = async (req: FastifyRequest) => {
    const origin = req.headers.origin;
    if (origin === undefined) return; // not a browser
    if (sameHostOrigin(origin, req.headers.host) || allowed.has(origin)) return;
    throw new BadOriginError(JSON.stringify(origin.slice(0, 200)));
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url.startsWith('/docs')) {
      route.config = { ...(route.config as object | undefined), helmet: helmetOptions(DOCS_CSP) } as typeof route.config;
    }
    if ((route as { websocket?: boolean }).websocket === true) {
      const on = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
      route.onRequest = [checkOrigin, ...on] as typeof route.onRequest;
    }
  });

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const type = req.headers['content-type'];
    if (typeof type !== 'string' || !/^\s*multipart\//i.test(type)) return;
    const length = req.headers['content-length'];
    if (length === undefined) throw new LengthRequiredError();
    const n = Number(length);
    if (!Number.isFinite(n) || n > opts.uploads.totalBytes) throw new UploadTooLargeError(Number.isFinite(n) ? n : -1, opts.uploads.totalBytes);
  });
}
