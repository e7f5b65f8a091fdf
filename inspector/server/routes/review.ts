/**
 * Bulk review actions (qa), the class list, stats and the audit trail.
 *   POST /api/review/reviewed   {items:[{runId,seq}], reviewed}   (qa)
 *   POST /api/review/label-bulk {items, verdict}                  (qa)
 *   GET  /api/classes                                             (any user)
 *   GET  /api/stats?from&to                                       (any user)
 *   GET  /api/audit?from&to&actor&action&target&limit&before      (admin, qa)
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { computeStats, LATENCY_EDGES_MS } from '../../review/stats.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { classList, queryDb } from './parts.js';
import { ErrorReply, LabelSchema, LabelVerdictSchema, PartRefSchema, TimeParam, authErrors, parseTime } from './schemas.js';

const Items = Type.Array(PartRefSchema, { minItems: 1, maxItems: 1000 });
const Nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const reviewRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/api/review/reviewed', {
    preHandler: app.requireRole('qa'),
    schema: {
      description: 'Mark parts reviewed (or not) for yourself',
      tags: ['review'],
      body: Type.Object({ items: Items, reviewed: Type.Boolean() }, { additionalProperties: false }),
      response: { 200: Type.Object({ changed: Type.Integer() }), ...authErrors },
    },
  }, async (req) => ({ changed: app.review.labels.setReviewed(req.body.items, req.user!.name, req.body.reviewed) }));

  app.post('/api/review/label-bulk', {
    preHandler: app.requireRole('qa'),
    schema: {
      description: 'Give many parts the same label verdict (class and regions kept); each is a new revision',
      tags: ['review'],
      body: Type.Object({ items: Items, verdict: LabelVerdictSchema }, { additionalProperties: false }),
      response: { 200: Type.Object({ labels: Type.Array(LabelSchema) }), 404: ErrorReply, ...authErrors },
    },
  }, async (req) => {
    const db = queryDb(app);
    const missing = req.body.items.filter((p) => !app.review.queries.row(db, p));
    if (missing.length) throw new NotFoundError(`part ${missing.slice(0, 5).map((p) => `${p.runId}/${p.seq}`).join(', ')}`);
    return { labels: app.review.labels.setVerdictBulk(req.body.items, req.body.verdict, req.user!.name) };
  });

  app.get('/api/classes', {
    preHandler: app.requireRole(),
    schema: { description: "The station's defect classes: the live model's plus the station-configured ones", tags: ['review'], response: { 200: Type.Object({ classes: Type.Array(Type.String()) }), ...authErrors } },
  }, async () => ({ classes: await classList(app) }));

  const NotInspected = Type.Integer({ description: 'rejects the station did not inspect (code 6 NOT_INSPECTED: dropped, camera error, never seen…); counted in parts and rejects' });
  const Latency = Type.Object({ count: Type.Integer(), p50: Nullable(Type.Number()), p90: Nullable(Type.Number()), p99: Nullable(Type.Number()), max: Nullable(Type.Number()), mean: Nullable(Type.Number()) });
  app.get('/api/stats', {
    preHandler: app.requireRole(),
    schema: {
      description: 'Per-hour (and, in `buckets`, finer for recent hours) yield, reject rate, parts not inspected and frame→verdict percentiles; rejects per code, per QA label class (rejectsByClass) and per model defect class (rejectsByModelClass); latency histogram; model-vs-QA agreement. Default range: the last 24 h.',
      tags: ['stats'],
      querystring: Type.Object({ from: Type.Optional(TimeParam), to: Type.Optional(TimeParam) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          from: Type.String(), to: Type.String(),
          totals: Type.Object({ parts: Type.Integer(), passes: Type.Integer(), rejects: Type.Integer(), notInspected: NotInspected, yield: Nullable(Type.Number()), rejectRate: Nullable(Type.Number()) }),
          hours: Type.Array(Type.Object({ hour: Type.String(), hourMs: Type.Number(), parts: Type.Integer(), passes: Type.Integer(), rejects: Type.Integer(), notInspected: NotInspected, yield: Nullable(Type.Number()), rejectRate: Nullable(Type.Number()), latency: Latency })),
          buckets: Type.Array(Type.Object({ startMs: Type.Number(), spanMs: Type.Integer(), parts: Type.Integer(), passes: Type.Integer(), rejects: Type.Integer(), notInspected: NotInspected, yield: Nullable(Type.Number()), rejectRate: Nullable(Type.Number()), latency: Latency }),
            { description: 'the per-hour figures on a finer grid near `to`: 1-minute buckets (spanMs 60000) in the last hour, 5-minute buckets in the 6 hours before, hourly beyond' }),
          rejectsByCode: Type.Array(Type.Object({ code: Type.Integer(), count: Type.Integer() })),
          rejectsByClass: Type.Array(Type.Object({ defectClass: Type.String(), count: Type.Integer() }), { description: "QA's view: parts labelled true_defect, by the label's class" }),
          rejectsByModelClass: Type.Array(Type.Object({ defectClass: Type.String(), count: Type.Integer() }), { description: "the model's view: rejects by results.defect_class ('(unclassified)' where NULL); parts not inspected are not in it (rejectsByModelClass + notInspected = rejects)" }),
          latencyHistogram: Type.Array(Type.Object({ leMs: Nullable(Type.Number()), count: Type.Integer() }), { description: `upper edges ${LATENCY_EDGES_MS.join(', ')} ms, then open` }),
          agreement: Type.Object({
            labelledRejects: Type.Integer(), falseRejects: Type.Integer(), falseRejectRate: Nullable(Type.Number()),
            labelledPasses: Type.Integer(), escapesFound: Type.Integer(), escapeRate: Nullable(Type.Number()),
            agreeing: Type.Integer(), labelled: Type.Integer(), agreement: Nullable(Type.Number()), unsure: Type.Integer(),
          }),
        }),
        ...authErrors, 503: ErrorReply,
      },
    },
  }, async (req) => {
    const to = parseTime(req.query.to) ?? Date.now();
    const from = parseTime(req.query.from) ?? to - 24 * 3_600_000;
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) throw new BadRequestError('from must be a valid time before to');
    return computeStats(queryDb(app), from, to);
  });

  app.get('/api/audit', {
    preHandler: app.requireRole('admin', 'qa'),
    schema: {
      description: 'The audit trail, newest first (action matches a prefix: "label." finds every label action)',
      tags: ['audit'],
      querystring: Type.Object({
        from: Type.Optional(TimeParam), to: Type.Optional(TimeParam),
        actor: Type.Optional(Type.String({ maxLength: 64 })), action: Type.Optional(Type.String({ maxLength: 64 })),
        target: Type.Optional(Type.String({ maxLength: 300 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        before: Type.Optional(Type.Integer({ minimum: 1, description: 'page: entries with a smaller id' })),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          items: Type.Array(Type.Object({ id: Type.Integer(), at: Type.String(), atMs: Type.Number(), actor: Type.String(), action: Type.String(), target: Type.String(), before: Type.Unknown(), after: Type.Unknown() })),
        }),
        ...authErrors,
      },
    },
  }, async (req) => {
    const q = req.query;
    return { items: app.review.audit.list({ from: parseTime(q.from), to: parseTime(q.to), actor: q.actor, action: q.action, target: q.target, limit: q.limit, beforeId: q.before }) };
  });
};
