/**
 * External plugins, registered first: cookies (sessions), rate limiting (opt-in
 * per route: login), WebSockets (live feed), multipart (model pushes), OpenAPI
 * (`/docs`) and the UI's static files (`ui/dist/` at `/`). When the UI has not
 * been built, `/` answers a 503 page that says how to build it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fastifyStatic from '@fastify/static';

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/dist/', import.meta.url));

const UI_MISSING_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Inspector: UI not built</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>The inspector UI is not built</h1>
<p>This station serves its pages from <code>ui/dist/</code>, which does not exist yet.
Build it with <code>npx tsx scripts/build-ui.ts</code> (or <code>npm run build</code>) and reload.</p>
<p>The API still works: see <a href="/docs">/docs</a>.</p></body></html>`;

export interface ExternalOptions {
  uiDir?: string;
  /** largest multipart file (model.onnx), bytes */
  maxUploadBytes?: number;
}

export async function registerExternal(app: FastifyInstance, opts: ExternalOptions): Promise<void> {
  await app.register(cookie);
  await app.register(rateLimit, { global: false });
  await app.register(websocket, { options: { maxPayload: 1 << 20 } });
  await app.register(multipart, { limits: { fileSize: opts.maxUploadBytes ?? 1 << 30, files: 16, fields: 16 } });
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
