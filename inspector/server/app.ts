/**
 * The station's Fastify app. Plugins are registered in the order
 * external → app → routes; every route carries a TypeBox schema; errors are
 * coded (@fastify/error) and bad input is a 4xx, never a 500.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import type { Logger } from '../core/logger.js';
import type { StationView } from './station-view.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    station: StationView;
  }
}

export interface AppOptions {
  view: StationView;
  logger: Logger | false;
}

/** App layer: the station view and the coded error format. */
const appPlugin = fp<{ view: StationView }>(async (app, opts) => {
  app.decorate('station', opts.view);
  app.setErrorHandler((err, _req, reply) => {
    const status = err.validation ? 400 : (err.statusCode ?? 500);
    const code = err.validation ? 'INSPECTOR_BAD_REQUEST' : (err.code ?? 'INSPECTOR_UNEXPECTED');
    if (status >= 500) reply.log.error({ err }, 'request failed');
    void reply.status(status).send({ statusCode: status, code, error: err.name, message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ statusCode: 404, code: 'INSPECTOR_NOT_FOUND', error: 'Not Found', message: `${req.method} ${req.url} not found` });
  });
}, { name: 'inspector-app' });

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger || undefined,
    logger: opts.logger ? undefined : false,
    disableRequestLogging: true,
    bodyLimit: 1 << 20,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // external plugins would go first (none needed yet), then the app, then routes
  await app.register(appPlugin, { view: opts.view });
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.ready();
  return app as unknown as FastifyInstance;
}
