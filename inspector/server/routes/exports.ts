/**
 * Dataset exports (roles qa and ml; admin passes every check):
 *   POST /api/exports {format, filter?}   → 202 {id}; runs in an export worker thread
 *   GET  /api/exports                     recorded exports, newest first (with live progress)
 *   GET  /api/exports/:id                 status, progress, folder, counts
 *   GET  /api/exports/:id/file/*          one file of a finished export (e.g. annotations.json)
 *   GET  /api/exports/:id/archive         the whole finished export as one zip (manifest inside), streamed
 * Starting and downloading an export are audited (`export.start`, `export.download`).
 */
import { createReadStream, statSync } from 'node:fs';
import { extname, relative, resolve, sep } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ExportJobs, jobFromRecord, type ExportJob } from '../../export/export-jobs.js';
import { ExportRegistry } from '../../export/export-registry.js';
import { ExportFileNotFoundError, ExportGoneError, ExportNotFoundError, ExportNotReadyError, ExportUnavailableError } from '../../export/errors.js';
import { exportArchive } from '../../export/export-archive.js';
import { ExportCounts, ExportFilter, ExportFormat, ExportRequest } from '../../export/schema.js';
import { authErrors, ErrorReply } from './schemas.js';
import { classList } from './parts.js';

const Progress = Type.Object({
  phase: Type.Union([Type.Literal('select'), Type.Literal('write'), Type.Literal('hash'), Type.Literal('done')]),
  done: Type.Integer(), total: Type.Integer(),
});
const ExportOut = Type.Object({
  id: Type.String(), format: ExportFormat, filter: ExportFilter, actor: Type.String(), path: Type.String(),
  status: Type.Union([Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  progress: Progress, createdAt: Type.String(), finishedAt: Type.Union([Type.String(), Type.Null()]),
  counts: Type.Union([ExportCounts, Type.Null()]), manifestSha256: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
});
const IdParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9]+-[0-9a-f]{8}$' }) });

const toOut = (j: ExportJob) => ({
  id: j.id, format: j.format, filter: j.filter, actor: j.actor, path: j.outDir, status: j.status, progress: j.progress,
  createdAt: new Date(j.createdAtMs).toISOString(), finishedAt: j.finishedAtMs === null ? null : new Date(j.finishedAtMs).toISOString(),
  counts: j.result?.counts ?? null, manifestSha256: j.result?.manifestSha256 ?? null, error: j.error,
});

const TYPES: Record<string, string> = { '.json': 'application/json', '.png': 'image/png', '.txt': 'text/plain; charset=utf-8', '.yaml': 'text/yaml; charset=utf-8' };

export const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const s = app.settings;
  const usable = s.resultsDbPath !== null && s.imagesDir !== null && s.reviewDbPath !== ':memory:';
  const jobs = usable ? new ExportJobs({
    resultsDbPath: s.resultsDbPath!, reviewDbPath: s.reviewDbPath, imagesDir: s.imagesDir!, stationClasses: s.stationClasses,
    logger: app.log.child({ mod: 'export' }),
  }) : null;
  const registry = new ExportRegistry(app.review.db);
  app.addHook('onClose', async () => jobs?.close());
  const find = (id: string): ExportJob => {
    const r = registry.get(id);
    const j = jobs ? jobs.view(id, r) : r && jobFromRecord(r);
    if (!j) throw new ExportNotFoundError(id);
    return j;
  };

  app.post('/api/exports', {
    preHandler: app.requireRole('qa', 'ml'),
    schema: {
      description: 'Start a dataset export (Anomalib Folder/MVTec, COCO or YOLO) of the filtered, labelled parts',
      tags: ['exports'], body: ExportRequest,
      response: { 202: Type.Object({ id: Type.String() }), 409: ErrorReply, 429: ErrorReply, 503: ErrorReply, ...authErrors },
    },
  }, async (req, reply) => {
    if (!jobs) throw new ExportUnavailableError('the server has no results database, images folder or review database file');
    const job = jobs.start({ format: req.body.format, filter: req.body.filter, actor: req.user!.name, classes: await classList(app) });
    app.audit.record({ actor: req.user!.name, action: 'export.start', target: `export:${job.id}`, before: null,
      after: { format: job.format, filter: job.filter, path: job.outDir } });
    return reply.status(202).send({ id: job.id });
  });

  app.get('/api/exports', {
    preHandler: app.requireRole('qa', 'ml'),
    schema: {
      description: 'Recorded exports, newest first', tags: ['exports'],
      querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
      response: { 200: Type.Array(ExportOut), ...authErrors },
    },
  }, async (req) => {
    const recorded = registry.list(req.query.limit);
    const seen = new Set(recorded.map((r) => r.id));
    const live = recorded.map((r) => jobs?.view(r.id, r) ?? jobFromRecord(r));
    // jobs started here whose worker has not registered them yet
    const pending = jobs ? jobs.all().filter((j) => !seen.has(j.id)) : [];
    return [...pending, ...live].map(toOut);
  });

  app.get('/api/exports/:id', {
    preHandler: app.requireRole('qa', 'ml'),
    schema: {
      description: 'Status, progress and folder of one export', tags: ['exports'], params: IdParams,
      response: { 200: ExportOut, 404: ErrorReply, ...authErrors },
    },
  }, async (req) => toOut(find(req.params.id)));

  app.get('/api/exports/:id/file/*', {
    preHandler: app.requireRole('qa', 'ml'),
    schema: {
      description: 'One file of a finished export (e.g. annotations.json, manifest.json)', tags: ['exports'],
      params: Type.Object({ id: IdParams.properties.id, '*': Type.String({ minLength: 1, maxLength: 500 }) }),
      response: { 404: ErrorReply, 409: ErrorReply, ...authErrors },
    },
  }, async (req, reply) => {
    const j = find(req.params.id);
    if (j.status !== 'done') throw new ExportNotReadyError(j.id, j.status);
    const root = resolve(j.outDir);
    const file = resolve(root, req.params['*']);
    const rel = relative(root, file);
    if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..')) throw new ExportFileNotFoundError(req.params['*']);
    let size: number;
    try { const st = statSync(file); if (!st.isFile()) throw new Error('not a file'); size = st.size; } catch { throw new ExportFileNotFoundError(req.params['*']); }
    const stream = createReadStream(file);
    return (reply as FastifyReply).type(TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream').header('content-length', size).send(stream);
  });

  app.get('/api/exports/:id/archive', {
    preHandler: app.requireRole('qa', 'ml'),
    schema: {
      description: 'The whole finished export as one zip archive (its folder, manifest.json inside), streamed file by file from disk',
      tags: ['exports'], params: IdParams, produces: ['application/zip'],
      response: { 404: ErrorReply, 409: ErrorReply, 410: ErrorReply, ...authErrors },
    },
  }, async (req, reply) => {
    const j = find(req.params.id);
    if (j.status !== 'done') throw new ExportNotReadyError(j.id, j.status);
    let archive;
    try { archive = exportArchive(resolve(j.outDir), new Date(j.finishedAtMs ?? j.createdAtMs)); } catch (err) {
      req.log.warn({ err, id: j.id }, 'export folder unreadable');
      throw new ExportGoneError(j.id, j.outDir);
    }
    app.audit.record({ actor: req.user!.name, action: 'export.download', target: `export:${j.id}`, before: null, after: { entries: archive.entries } });
    return (reply as FastifyReply).type('application/zip')
      .header('content-disposition', `attachment; filename="${archive.fileName}"`)
      .header('cache-control', 'no-store')
      .send(archive.stream);
  });
};
