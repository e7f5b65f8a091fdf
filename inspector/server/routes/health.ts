import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthReport } from '../station-view.js';

/** GET /health: 200 when camera, model and PLC link are up, 503 otherwise. */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: {
      description: 'Whether camera, model and PLC link are up, with their counters and raised alarms',
      response: { 200: HealthReport, 503: HealthReport },
    },
  }, async (_req, reply) => {
    const report = await app.station.health();
    return reply.status(report.status === 'up' ? 200 : 503).send(report);
  });
};
