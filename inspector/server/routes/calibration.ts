/**
 * Calibration API (admin writes, any logged-in user reads), all under /api/calibration:
 *   GET  /api/calibration                     the current version (404 before the first save)
 *   GET  /api/calibration/versions            every version, newest last
 *   GET  /api/calibration/versions/:version   one version
 *   POST /api/calibration/activate {version}  point the station at a version (rollback)
 *   POST /api/calibration/lens {imagesDir, board}   lens from board images in a folder on the station
 *   POST /api/calibration/plane {points, mm} | {imagePath, board}   plane and scale
 *   PUT  /api/calibration/roi {x, y, width, height}
 *   POST /api/calibration/checks/reference {imagePath | runId+seq, bands?}   focus/exposure reference
 *   POST /api/calibration/check {imagePath} | {runId, seq}   focus/exposure figures of an image (no save)
 *   POST /api/calibration/check/upload        the same for an uploaded image (multipart, one file)
 * The two checks read only images the station stored (imagePath: a path inside the
 * images folder, results.imagesDir, as the image writer records them; or a part's saved
 * image) or the request uploaded. A path outside the folder is refused (400
 * INSPECTOR_PATH_OUTSIDE) before anything is looked at, and a missing file, a non-image
 * and a symlink out of the folder all get the one same answer (400
 * INSPECTOR_CALIBRATION_BAD_INPUT): the route tells nobody what exists on the station.
 *   GET  /api/calibration/lens/view.png?imagesDir&name&undistort   a board view with its corners drawn (admin)
 *   GET  /api/calibration/live-check          focus/exposure of the newest frame against the reference (any user)
 *   POST /api/calibration/checks/reference-live {bands?}   the newest frame's figures as the reference (admin)
 * Every change is a new version of the calibration file and an audit record.
 * Lens and plane fits and board detection are synchronous OpenCV calls (a lens fit
 * takes seconds): they run in the calibration OpenCV worker (calibration-opencv.ts),
 * never in this thread nor on the station's hot-path thread. After every
 * save or activation the station is told (RPC `calibration.changed`) and puts the
 * new version in force without a restart (station/calibration-reload.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { readdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { readGray, type GrayImage } from '../../core/gray-image.js';
import { PathOutsideError, NotFoundError } from '../errors.js';
import { resolveInside } from '../part-images.js';
import { queryDb } from './parts.js';
import { CalibrationStore, CalibrationDoc, BoardSchema, RoiSection, ChecksSection, type CalibrationPatch } from '../../../calibration/calibration-file.js';
import { CalibrationBadInputError, CalibrationMissingError } from '../../../calibration/errors.js';
import { computeChecks, evaluateDrift, DEFAULT_BANDS } from '../../../calibration/image-checks.js';
import { validateRoi } from '../../../calibration/roi.js';
import { BinaryReply, ErrorReply, PartParams, authErrors } from './schemas.js';
import { runOpenCv } from './calibration-opencv.js';

const Pt = Type.Object({ x: Type.Number(), y: Type.Number() });
const Versioned = Type.Object({ version: Type.Integer(), doc: CalibrationDoc });
const Checks = Type.Object({
  tenengrad: Type.Number(), laplacianVar: Type.Number(), mean: Type.Number(), p01: Type.Number(), p99: Type.Number(),
  saturatedFraction: Type.Number(), darkFraction: Type.Number(), histogram: Type.Array(Type.Number()), samples: Type.Integer(),
});
const errs = { ...authErrors, 404: ErrorReply, 409: ErrorReply, 422: ErrorReply, 503: ErrorReply }; // 503: no station, or the OpenCV worker gone

/** an uploaded image for a check: at most this many bytes and pixels (a 4096 x 4096 frame) */
export const CHECK_UPLOAD_BYTES = 32 << 20;
export const CHECK_UPLOAD_PIXELS = 4096 * 4096;
/** An image the station stored: a path inside the images folder, or a part's saved image (one of the two). */
const storedImageFields = {
  imagePath: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: "a path inside the station's images folder (results.imagesDir), e.g. images/<run>/reject/<seq>.png" })),
  runId: Type.Optional(PartParams.properties.runId),
  seq: Type.Optional(PartParams.properties.seq),
};
const CheckBands = Type.Object({ sharpnessDropMax: Type.Number({ minimum: 0, maximum: 1 }), meanDeltaMax: Type.Number({ minimum: 0 }), saturatedMax: Type.Number({ minimum: 0, maximum: 1 }) });

export const calibrationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const store = (): CalibrationStore => {
    if (!app.settings.calibrationDir) throw new CalibrationMissingError('this server has no calibration folder configured');
    return new CalibrationStore(app.settings.calibrationDir);
  };
  // the station puts a saved or activated version in force without a restart (station/calibration-reload.ts);
  // it answers at once and re-loads its models in the background, so the reply does not wait for that
  const notifyStation = (version: number, actor: string, action: string): void => {
    app.station.call?.('calibration.changed', { version, actor, action })
      .catch((err: Error) => app.log.warn({ err: err.message, version }, 'the station was not told about the new calibration'));
  };
  const save = (actor: string, action: string, patch: CalibrationPatch, note?: string): { version: number; doc: CalibrationDoc } => {
    const s = store();
    const before = s.current();
    const doc = s.save(patch, { actor, ...(note ? { note } : {}) });
    const key = Object.keys(patch)[0] as keyof CalibrationPatch;
    app.audit.record({ actor, action, target: `calibration:v${doc.version}`, before: before ? { version: before.version, [key]: before[key] ?? null } : null,
      after: { version: doc.version, [key]: doc[key] ?? null } });
    notifyStation(doc.version, actor, action);
    return { version: doc.version, doc };
  };
  const tags = ['calibration'];

  /** the ROI of the current calibration (none without a calibration folder: the whole image) */
  const currentRoi = () => (app.settings.calibrationDir ? store().current()?.roi ?? null : null);

  /** Read an image the station stored; nothing outside the images folder is ever opened. */
  const storedGray = async (b: { imagePath?: string; runId?: string; seq?: number }): Promise<GrayImage> => {
    const dir = app.settings.imagesDir;
    let rel: string;
    const byPart = b.runId !== undefined || b.seq !== undefined;
    if (b.imagePath !== undefined && !byPart) rel = b.imagePath;
    else if (b.imagePath === undefined && b.runId !== undefined && b.seq !== undefined) {
      const row = app.review.queries.row(queryDb(app), { runId: b.runId, seq: b.seq });
      if (!row) throw new NotFoundError(`part ${b.runId}/${b.seq}`);
      if (!row.image_path) throw new CalibrationBadInputError(`part ${b.runId}/${b.seq} has no saved image`);
      rel = row.image_path;
    } else throw new CalibrationBadInputError('give imagePath, or runId and seq');
    if (!dir) throw new CalibrationBadInputError('this server has no images folder: upload the image instead');
    const root = resolve(dir);
    const r = relative(root, resolve(root, rel));
    if (isAbsolute(rel) || r === '' || r === '..' || r.startsWith('..' + sep) || isAbsolute(r)) throw new PathOutsideError(rel);
    try {
      return await readGray(await resolveInside(dir, rel));
    } catch {
      // one answer for missing, unreadable, not an image, or a link out of the folder
      throw new CalibrationBadInputError(`${JSON.stringify(rel)} is not a readable image in the station's images folder`);
    }
  };
  const uploadedGray = async (buf: Buffer): Promise<GrayImage> => {
    try {
      const { data, info } = await sharp(buf, { limitInputPixels: CHECK_UPLOAD_PIXELS }).toColourspace('b-w').extractChannel(0).raw()
        .toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height) };
    } catch {
      throw new CalibrationBadInputError(`the upload is not an image of at most ${CHECK_UPLOAD_PIXELS} pixels`);
    }
  };

  app.get('/api/calibration', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: 'The current calibration version', tags, response: { 200: Versioned, ...errs } },
  }, async () => {
    const doc = store().current();
    if (!doc) throw new CalibrationMissingError('no calibration saved yet');
    return { version: doc.version, doc };
  });

  app.get('/api/calibration/versions', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: 'All calibration versions', tags, response: { 200: Type.Array(Type.Object({
      version: Type.Integer(), createdAt: Type.String(), createdBy: Type.String(), note: Type.Optional(Type.String()),
      sections: Type.Array(Type.String()), current: Type.Boolean() })), ...errs } },
  }, async () => store().list());

  app.get('/api/calibration/versions/:version', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: 'One calibration version', tags, params: Type.Object({ version: Type.Integer({ minimum: 1 }) }), response: { 200: Versioned, ...errs } },
  }, async (req) => ({ version: req.params.version, doc: store().get(req.params.version) }));

  app.post('/api/calibration/activate', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'Point the station at an existing version (rollback)', tags,
      body: Type.Object({ version: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), response: { 200: Versioned, ...errs } },
  }, async (req) => {
    const s = store();
    const before = s.currentVersion();
    const doc = s.activate(req.body.version);
    app.audit.record({ actor: req.user!.name, action: 'calibration.activate', target: `calibration:v${doc.version}`, before: { version: before }, after: { version: doc.version } });
    notifyStation(doc.version, req.user!.name, 'calibration.activate');
    return { version: doc.version, doc };
  });

  app.post('/api/calibration/lens', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'Calibrate the lens from checkerboard images in a folder on the station', tags,
      body: Type.Object({ imagesDir: Type.String({ minLength: 1 }), board: BoardSchema, minViews: Type.Optional(Type.Integer({ minimum: 3 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ version: Type.Integer(), rms: Type.Number(), used: Type.Integer(), distinct: Type.Integer(),
        views: Type.Array(Type.Object({ name: Type.String(), found: Type.Boolean(), rms: Type.Union([Type.Number(), Type.Null()]),
          corners: Type.Union([Type.Array(Pt), Type.Null()]) })) }), ...errs } },
  }, async (req) => {
    let files: string[];
    try { files = readdirSync(req.body.imagesDir).filter((f) => /\.(png|jpe?g|bmp|tiff?)$/i.test(f)).sort(); } catch (err) {
      throw new CalibrationBadInputError(`cannot read ${req.body.imagesDir}: ${(err as Error).message}`);
    }
    // images read and fitted in the calibration OpenCV worker: this thread keeps serving meanwhile
    const r = await runOpenCv('lens', { imagesDir: req.body.imagesDir, files, board: req.body.board, ...(req.body.minViews ? { minViews: req.body.minViews } : {}) });
    const { version } = save(req.user!.name, 'calibration.lens', { lens: { camera: r.camera, imageSize: r.imageSize, board: req.body.board,
      rms: r.rms, views: r.used, distinctViews: r.distinct } }, `lens from ${files.length} images`);
    return { version, rms: r.rms, used: r.used, distinct: r.distinct, views: r.views.map((v) => ({ name: v.name, found: v.found, rms: v.rms, corners: v.corners })) };
  });

  app.post('/api/calibration/plane', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'Plane homography and mm per pixel, from four or more marked points or a board image on the station', tags,
      body: Type.Union([
        Type.Object({ points: Type.Array(Pt, { minItems: 4 }), mm: Type.Array(Pt, { minItems: 4 }) }, { additionalProperties: false }),
        Type.Object({ imagePath: Type.String({ minLength: 1 }), board: BoardSchema }, { additionalProperties: false }),
      ]),
      response: { 200: Type.Object({ version: Type.Integer(), mmPerPx: Type.Number(), mmPerPxX: Type.Number(), mmPerPxY: Type.Number(),
        residualMm: Type.Number(), undistorted: Type.Boolean() }), ...errs } },
  }, async (req) => {
    const cur = store().current();
    const lens = cur?.lens?.camera ?? null;
    const body = req.body;
    const plane = 'points' in body
      ? await runOpenCv('planeFromPoints', { points: body.points, mm: body.mm, size: cur?.frame ?? { width: 1280, height: 1024 }, lens })
      : await runOpenCv('planeFromBoard', { imagePath: body.imagePath, board: body.board, lens });
    const { version } = save(req.user!.name, 'calibration.plane', { plane });
    return { version, mmPerPx: plane.mmPerPx, mmPerPxX: plane.mmPerPxX, mmPerPxY: plane.mmPerPxY, residualMm: plane.residualMm, undistorted: plane.undistorted };
  });

  app.put('/api/calibration/roi', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'Store the region of interest (frame pixels)', tags, body: RoiSection, response: { 200: Versioned, ...errs } },
  }, async (req) => {
    const frame = store().current()?.frame ?? { width: 1280, height: 1024 };
    const roi = validateRoi(req.body, frame);
    return save(req.user!.name, 'calibration.roi', { roi: { x: roi.x, y: roi.y, width: roi.width, height: roi.height } });
  });

  app.post('/api/calibration/check', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: "Focus and exposure figures of an image the station stored (inside the ROI): a path inside the images folder, or a part's saved image", tags,
      body: Type.Object(storedImageFields, { additionalProperties: false }), response: { 200: Checks, ...errs } },
  }, async (req) => {
    const img = await storedGray(req.body);
    return computeChecks(img.data, img.width, img.height, { roi: currentRoi(), step: 2 });
  });

  app.post('/api/calibration/check/upload', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: `Focus and exposure figures of an uploaded image (multipart, one file of at most ${CHECK_UPLOAD_BYTES >> 20} MiB and ${CHECK_UPLOAD_PIXELS} pixels; inside the ROI)`,
      tags, consumes: ['multipart/form-data'], response: { 200: Checks, ...errs, 411: ErrorReply, 413: ErrorReply, 415: ErrorReply } },
  }, async (req) => {
    if (!req.isMultipart()) throw new CalibrationBadInputError('send multipart/form-data with one image file');
    const file = await req.file({ limits: { files: 1, fileSize: Math.min(CHECK_UPLOAD_BYTES, app.settings.uploads.fileBytes) } });
    if (!file) throw new CalibrationBadInputError('the upload has no file');
    const img = await uploadedGray(await file.toBuffer());
    return computeChecks(img.data, img.width, img.height, { roi: currentRoi(), step: 2 });
  });

  app.post('/api/calibration/checks/reference', {
    preHandler: app.requireRole('admin'),
    schema: { description: "Save the focus/exposure reference the running station is compared with, from an image the station stored (a path inside the images folder, or a part's saved image)", tags,
      body: Type.Object({ ...storedImageFields, bands: Type.Optional(CheckBands) }, { additionalProperties: false }),
      response: { 200: Versioned, ...errs } },
  }, async (req) => {
    const { bands, ...which } = req.body;
    const img = await storedGray(which);
    const c = computeChecks(img.data, img.width, img.height, { roi: store().current()?.roi ?? null, step: 2 });
    return save(req.user!.name, 'calibration.checks', { checks: { reference: { tenengrad: c.tenengrad, laplacianVar: c.laplacianVar, mean: c.mean,
      saturatedFraction: c.saturatedFraction, darkFraction: c.darkFraction }, bands: bands ?? { ...DEFAULT_BANDS } } });
  });

  // ---- for the calibration page (ui/src/pages/Calibration.tsx); pictures and live figures: routes/calibration-views.ts
  const Bands = Type.Object({ sharpnessDropMax: Type.Number({ minimum: 0, maximum: 1 }), meanDeltaMax: Type.Number({ minimum: 0 }), saturatedMax: Type.Number({ minimum: 0, maximum: 1 }) });
  const Ok = Type.Object({ ok: Type.Boolean(), detail: Type.String() });

  app.get('/api/calibration/lens/view.png', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'A board image from a lens folder on the station with the corners found drawn on it (undistort=true: undistorted with the current lens calibration)', tags,
      produces: ['image/png'],
      querystring: Type.Object({ imagesDir: Type.String({ minLength: 1 }), name: Type.String({ minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$' }),
        undistort: Type.Boolean({ default: false }), cols: Type.Optional(Type.Integer({ minimum: 3 })), rows: Type.Optional(Type.Integer({ minimum: 3 })),
        width: Type.Integer({ minimum: 64, maximum: 4096, default: 960 }) }, { additionalProperties: false }),
      response: { 200: BinaryReply, ...errs } },
  }, async (req, reply) => {
    const { renderBoardView } = await import('./calibration-views.js');
    const q = req.query;
    const lens = store().current()?.lens ?? null;
    const board = q.cols && q.rows ? { cols: q.cols, rows: q.rows, squareMm: lens?.board.squareMm ?? 1 } : lens?.board;
    if (!board) throw new CalibrationBadInputError('give cols and rows: there is no lens calibration to take the board from');
    if (q.undistort && !lens) throw new CalibrationMissingError('no lens calibration to undistort with');
    const img = await readGray(join(q.imagesDir, q.name)).catch((err: Error) => { throw new CalibrationBadInputError(err.message); });
    const png = await renderBoardView(img, await runOpenCv('detect', { image: img, board }), board, { camera: lens?.camera ?? null, undistort: q.undistort, name: q.name, maxWidth: q.width });
    return reply.type('image/png').header('cache-control', 'no-store').send(png);
  });

  app.get('/api/calibration/live-check', {
    preHandler: app.requireRole('operator', 'qa', 'ml', 'admin'),
    schema: { description: 'Focus and exposure figures of the newest camera frame (inside the ROI), judged against the calibrated reference and bands', tags,
      response: { 200: Type.Object({ checks: Checks, reference: Type.Union([ChecksSection.properties.reference, Type.Null()]), bands: Bands,
        focus: Ok, exposure: Ok, frame: Type.Object({ width: Type.Integer(), height: Type.Integer() }) }), ...errs, 503: ErrorReply } },
  }, async () => {
    const { liveGray } = await import('./calibration-views.js');
    const img = await liveGray(app);
    const cur = app.settings.calibrationDir ? store().current() : null;
    const roi = cur?.roi && cur.roi.x + cur.roi.width <= img.width && cur.roi.y + cur.roi.height <= img.height ? cur.roi : null;
    const checks = computeChecks(img.data, img.width, img.height, { roi, step: 2 });
    const bands = cur?.checks?.bands ?? { ...DEFAULT_BANDS };
    const reference = cur?.checks?.reference ?? null;
    return { checks, reference, bands, ...evaluateDrift(checks, reference, bands), frame: { width: img.width, height: img.height } };
  });

  app.post('/api/calibration/checks/reference-live', {
    preHandler: app.requireRole('admin'),
    schema: { description: 'Save the newest camera frame\'s focus/exposure figures (inside the ROI) as the reference', tags,
      body: Type.Object({ bands: Type.Optional(Bands) }, { additionalProperties: false }), response: { 200: Versioned, ...errs, 503: ErrorReply } },
  }, async (req) => {
    const { liveGray } = await import('./calibration-views.js');
    const img = await liveGray(app);
    const c = computeChecks(img.data, img.width, img.height, { roi: store().current()?.roi ?? null, step: 2 });
    return save(req.user!.name, 'calibration.checks', { checks: { reference: { tenengrad: c.tenengrad, laplacianVar: c.laplacianVar, mean: c.mean,
      saturatedFraction: c.saturatedFraction, darkFraction: c.darkFraction }, bands: req.body.bands ?? store().current()?.checks?.bands ?? { ...DEFAULT_BANDS } } }, 'reference from the live frame');
  });
};
