/**
 * External plugins, registered first: the web defences (plugins/security.ts:
 * helmet's headers and CSP, the WebSocket Origin check, the upload length
 * check), cookies (sessions), rate limiting (opt-in per route: login),
 * WebSockets (live feed), multipart (model pushes, calibration image uploads;
 * limits from `uploads`), OpenAPI (`/docs`) and the UI's static files
 * (`ui/dist/` at `/`). When the UI has not been built, `/` answers a 503 page
 * that says how to build it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fastifyStatic from '@fastify/static';
import { registerSecurity, type UploadLimits } from './security.js';

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/dist/', import.meta.url));

const UI_MISSING_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Inspector: UI not built</title></head>
<body>
<h1>The inspector UI is not built</h1>
<p>This station serves its pages from <code>ui/dist/</code>, which does not exist yet.
Build it with <code>npx tsx scripts/build-ui.ts</code> (or <code>npm run build</code>) and reload.</p>
<p>The API still works: see <a href="/docs">/docs</a>.</p></body></html>`;

export interface ExternalOptions {
  uiDir?: string;
  /** multipart limits (plugins/security.ts uploadLimits) */
  uploads: UploadLimits;
  /** origins besides the request's own host that may open WebSockets */
  allowedOrigins: readonly string[];
}

export const BAD_MULTIPART = 'INSPECTOR_BAD_MULTIPART';

/**
 * An upload whose body ends without the closing boundary must be refused, not left hanging.
 * @fastify/multipart then hands out the open part with its file stream already closed
 * (destroyed without an error and never ended), or reports the parser's error on that stream
 * before the route reads it; a route that pipes the file (model pushes) would wait forever.
 * For multipart requests `req.files()` and `req.parts()` are wrapped: a part whose stream is
 * already closed is an error at once, and the next part is asked for as soon as one is
 * handed out, so that a body cut short fails the stream being read. Either way the route
 * gets a coded 400 (INSPECTOR_BAD_MULTIPART).
 */
function guardCutShortUploads(app: FastifyInstance): void {
  type Part = { file?: Readable };
  const cutShort = (why: string): Error => Object.assign(new Error(`the multipart body is cut short or malformed: ${why}`), { statusCode: 400, code: BAD_MULTIPART });
  const broken = (f: Readable | undefined): f is Readable => f !== undefined && f.destroyed && !f.readableEnded;
  async function* guarded<T extends Part>(source: AsyncIterableIterator<T>): AsyncGenerator<T, void, undefined> {
    let next = source.next();
    try {
      for (;;) {
        const r = await next;
        if (r.done) return;
        const part = r.value;
        if (broken(part.file)) throw cutShort('a part ends before its data does');
        next = source.next(); // the rest of the body: settles when this file has been read, or fails early if the body is cut short
        const fail = (err: Error): void => {
          const f = part.file;
          if (!f || f.readableEnded) return;
          // @fastify/multipart always listens for 'error' on its file streams: emitting is safe
          if (f.destroyed) f.emit('error', err); else f.destroy(err);
        };
        // the parser's own coded errors (too many files, 413) pass as they are
        next.then(() => { if (broken(part.file)) fail(cutShort('a part ends before its data does')); },
          (err: Error & { statusCode?: number }) => fail(err.statusCode ? err : cutShort(err.message)));
        yield part;
      }
    } catch (err) {
      throw (err as { statusCode?: number }).statusCode ? err : cutShort((err as Error).message);
    } finally {
      next.catch(() => undefined);
    }
  }
  // preValidation: the multipart content parser has marked the request by then
  app.addHook('preValidation', async (req: FastifyRequest) => {
    if (!req.isMultipart()) return;
    const files = req.files.bind(req);
    const parts = req.parts.bind(req);
    req.files = ((o?: Parameters<typeof files>[0]) => guarded(files(o))) as typeof req.files;
    req.parts = ((o?: Parameters<typeof parts>[0]) => guarded(parts(o) as AsyncIterableIterator<Part>)) as typeof req.parts;
  });
}

export async function registerExternal(app: FastifyInstance, opts: ExternalOptions): Promise<void> {
  await registerSecurity(app, { uploads: opts.uploads, allowedOrigins: opts.allowedOrigins });
  await app.register(cookie);
  await app.register(rateLimit, { global: false });
  await app.register(websocket, { options: { maxPayload: 1 << 20 } });
  await app.register(multipart, {
    limits: { fileSize: opts.uploads.fileBytes, files: opts.uploads.files, fields: 8, fieldSize: 64 << 10, parts: opts.uploads.files + 8, headerPairs: 100 },
  });
  guardCutShortUploads(app);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'inline-inspector station API', version: '1.0.0', description: 'Live feed, review queue, labels, stats, audit, models, exports, calibration. Log in (session cookie) or send `Authorization: Bearer <token>`.' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'inspector_session' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ session: [] }, { bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const uiDir = opts.uiDir ?? DEFAULT_UI_DIR;
  if (existsSync(uiDir)) {
    await app.register(fastifyStatic, { root: uiDir, prefix: '/', index: ['index.html'], wildcard: true });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.status(503).type('text/html; charset=utf-8').send(UI_MISSING_PAGE));
  }
}
