import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthReport } from '../station-view.js';

/** GET /health: 200 when camera, model and PLC link are up, 503 otherwise (degraded included: a PLC whose part ids disagree, PART_SYNC). */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: {
      description: 'Whether camera, model and PLC link are up, with their counters and raised alarms. plc is degraded while PART_SYNC is raised; plc.line puts the PLC\'s outcome counters beside the station\'s.',
      response: { 200: HealthReport, 503: HealthReport },
    },
  }, async (_req, reply) => {
    const report = await app.station.health();
    return reply.status(report.status === 'up' ? 200 : 503).send(report);
  });
};
