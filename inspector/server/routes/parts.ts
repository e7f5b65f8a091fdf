/**
 * The review queue, one part, its image and anomaly map, and its label.
 *   GET /api/parts?from&to&verdict&class&model&reviewed&doubtful&limit&cursor   (any user)
 *       class: the QA label's class OR the model's class of the verdict (item.model.defectClass)
 *   GET /api/parts/:runId/:seq                                                  (any user)
 *   GET /api/parts/:runId/:seq/image   saved PNG                                (any user)
 *   GET /api/parts/:runId/:seq/map     anomaly map as a PNG heatmap (RGBA)      (any user)
 *       ?width: at most the part's own resolution (the saved image's width; without an image
 *       the map's own), rendered in the part-render worker and cached (routes/part-render.ts);
 *       `x-render-cache: hit|miss`
 *   PUT /api/parts/:runId/:seq/label   {verdict, defectClass?, regions, revision} (qa)
 *   GET /api/parts/:runId/:seq/label/history                                    (any user)
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { BadCursor } from '../../review/review-queries.js';
import { LabelConflict } from '../../review/labels.js';
import { BadRequestError, LabelConflictError, NotFoundError, ResultsUnavailableError, UnknownClassError } from '../errors.js';
import { classesOf, liveModel } from '../live-model.js';
import { stat } from 'node:fs/promises';
import { readPartImage, resolveInside } from '../part-images.js';
import { ImageUnreadableError, StoredImageMissingError, pngSize } from './part-render.js';
import {
  BinaryReply, ErrorReply, LabelSchema, LabelVerdictSchema, PartItemSchema, PartParams, RegionSchema, TimeParam, authErrors, parseTime,
} from './schemas.js';

export function queryDb(app: FastifyInstance) {
  const db = app.review.queries.db();
  if (!db) throw new ResultsUnavailableError(app.settings.resultsDbPath ? `${app.settings.resultsDbPath} does not exist yet` : 'no results database configured');
  return db;
}

/** The class list: the live model's defect classes plus the station's. */
export async function classList(app: FastifyInstance): Promise<string[]> {
  let fromModel: string[] = [];
  try { fromModel = classesOf((await liveModel(app)).outputs); } catch { /* no model: station classes only */ }
  return [...new Set([...fromModel, ...app.settings.stationClasses])];
}

export const partRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/parts', {
    preHandler: app.requireRole(),
    schema: {
      description: 'Review queue, newest first: rejects plus passes within results.doubtMargin of the threshold',
      tags: ['review'],
      querystring: Type.Object({
        from: Type.Optional(TimeParam), to: Type.Optional(TimeParam),
        verdict: Type.Optional(Type.Union([Type.Literal('pass'), Type.Literal('reject')])),
        class: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "parts whose QA label's class or whose model's defect class (model.defectClass) is this one" })),
        model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        reviewed: Type.Optional(Type.Boolean()), doubtful: Type.Optional(Type.Boolean()),
        limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
        cursor: Type.Optional(Type.String({ maxLength: 200 })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(PartItemSchema), nextCursor: Type.Union([Type.String(), Type.Null()]), threshold: Type.Number(), doubtMargin: Type.Number() }), ...authErrors, 503: ErrorReply },
    },
  }, async (req) => {
    const q = req.query;
    const [from, to] = [parseTime(q.from), parseTime(q.to)];
    if (from !== undefined && to !== undefined && from >= to) throw new BadRequestError('from must be a time before to');
    const db = queryDb(app);
    const model = await liveModel(app);
    try {
      const r = app.review.queries.queue(db, {
        from, to, verdict: q.verdict, defectClass: q.class, model: q.model,
        reviewed: q.reviewed, doubtful: q.doubtful, limit: q.limit, cursor: q.cursor,
      }, req.user!.name, model.threshold, app.settings.doubtMargin);
      return { ...r, threshold: model.threshold, doubtMargin: app.settings.doubtMargin };
    } catch (err) {
      if (err instanceof BadCursor) throw new BadRequestError(err.message);
      throw err;
    }
  });

  app.get('/api/parts/:runId/:seq', {
    preHandler: app.requireRole(),
    schema: { description: 'One part: result, latest label, your reviewed state', tags: ['review'], params: PartParams, response: { 200: PartItemSchema, 404: ErrorReply, ...authErrors } },
  }, async (req) => {
    const model = await liveModel(app);
    const p = app.review.queries.part(queryDb(app), req.params, req.user!.name, model.threshold, app.settings.doubtMargin);
    if (!p) throw new NotFoundError(`part ${req.params.runId}/${req.params.seq}`);
    const { row: _row, ...item } = p;
    return item;
  });

  app.get('/api/parts/:runId/:seq/image', {
    preHandler: app.requireRole(),
    schema: { description: 'The saved part image (PNG, full resolution)', tags: ['review'], params: PartParams, produces: ['image/png'], response: { 200: BinaryReply, 404: ErrorReply, ...authErrors } },
  }, async (req, reply) => {
    const row = app.review.queries.row(queryDb(app), req.params);
    const png = await readPartImage(app.settings.imagesDir, row?.image_path ?? null, `image of ${req.params.runId}/${req.params.seq}`);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
  });

  app.get('/api/parts/:runId/:seq/map', {
    preHandler: app.requireRole(),
    schema: {
      description: "The anomaly map as a heatmap PNG (RGBA, alpha follows the value) for overlay; `width` rescales it (e.g. to the image width), at most to the part's own resolution. Cached; header x-render-cache says hit or miss.",
      tags: ['review'], params: PartParams, produces: ['image/png'],
      querystring: Type.Object({ width: Type.Optional(Type.Integer({ minimum: 8, maximum: 8192 })) }, { additionalProperties: false }),
      response: { 200: BinaryReply, 404: ErrorReply, 422: ErrorReply, 429: ErrorReply, ...authErrors },
    },
  }, async (req, reply) => {
    const what = `anomaly map of ${req.params.runId}/${req.params.seq}`;
    const row = app.review.queries.row(queryDb(app), req.params);
    const dir = app.settings.imagesDir;
    if (!dir || !row?.anomaly_map_path) throw new StoredImageMissingError(what);
    const mapPath = await resolveInside(dir, row.anomaly_map_path);
    const [map, st] = await Promise.all([pngSize(mapPath), stat(mapPath)]).catch(() => { throw new StoredImageMissingError(what); });
    if (!map) throw new ImageUnreadableError(what, 'not a PNG');
    // the part's own resolution bounds the width: the saved image's, else the map's own
    const image = row.image_path ? await resolveInside(dir, row.image_path).then(pngSize).catch(() => null) : null;
    const width = Math.max(1, Math.min(req.query.width ?? map.width, image?.width ?? map.width));
    const { png, cached } = await app.partRender.heatmap(`${mapPath}|${st.mtimeMs}|${st.size}|${width}`, mapPath, width, what);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').header('x-render-cache', cached ? 'hit' : 'miss').send(png);
  });

  app.put('/api/parts/:runId/:seq/label', {
    preHandler: app.requireRole('qa'),
    schema: {
      description: 'Save the label (optimistic concurrency: send the revision you last saw, 0 for none; 409 if it changed)',
      tags: ['review'], params: PartParams,
      body: Type.Object({
        verdict: LabelVerdictSchema,
        defectClass: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
        regions: Type.Array(RegionSchema, { maxItems: 500 }),
        revision: Type.Integer({ minimum: 0 }),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ label: LabelSchema, changed: Type.Boolean() }), 404: ErrorReply, 409: ErrorReply, ...authErrors },
    },
  }, async (req) => {
    const b = req.body;
    if (b.defectClass != null) {
      const classes = await classList(app);
      if (!classes.includes(b.defectClass)) throw new UnknownClassError(b.defectClass);
    }
    if (!app.review.queries.row(queryDb(app), req.params)) throw new NotFoundError(`part ${req.params.runId}/${req.params.seq}`);
    try {
      return app.review.labels.set(req.params, { verdict: b.verdict, defectClass: b.defectClass ?? null, regions: b.regions }, b.revision, req.user!.name);
    } catch (err) {
      if (err instanceof LabelConflict) throw new LabelConflictError(`${req.params.runId}/${req.params.seq}`, err.sent, err.current?.revision ?? 0);
      throw err;
    }
  });

  app.get('/api/parts/:runId/:seq/label/history', {
    preHandler: app.requireRole(),
    schema: { description: 'Every revision of the label, oldest first', tags: ['review'], params: PartParams, response: { 200: Type.Array(LabelSchema), ...authErrors } },
  }, async (req) => app.review.labels.history(req.params));
};
