import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

/** GET /metrics: Prometheus text exposition of the station's registry. */
export const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', {
    schema: {
      description: 'Prometheus metrics: stage latency histograms, part/verdict/drop/PLC counters, event-loop lag',
      response: { 200: Type.String() },
    },
  }, async (_req, reply) => {
    const { contentType, body } = await app.station.metrics();
    return reply.type(contentType).send(body);
  });
};
