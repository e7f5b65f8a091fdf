/**
 * Registration check of the golden reference, for step 4 of the calibration page (admin):
 *   POST /api/calibration/reference/check {imagePath?, packageDir?}
 *        the newest camera frame (or an image file on the station) registered to the golden
 *        reference of the live model package (or of a package folder on the station, e.g. a
 *        taught candidate before it is pushed): shift, rotation, quality against the manifest's
 *        limits, the shift in mm when a plane is calibrated, and the URL of the overlay PNG
 *   GET  /api/calibration/reference/overlay.png?id   that overlay (the last few checks are kept)
 * The frame is resized to the reference exactly as the station's inference worker does
 * (inspector/teach/frame-registration.ts `resizeGray`: the box mean for integer area factors,
 * which is what its binning gives), undistorted through the station's lens table when a lens
 * calibration for the frame size exists (as the station's registration path does), and
 * registered with calibration/registration.ts, plain JS:
 * this route never loads the OpenCV binding. A frame that cannot be registered (blank, wrong
 * part, moved too far) is a 200 with ok=false and the reason: that is a result, not an error.
 * A live model without `registration` is a 409 INSPECTOR_CALIBRATION_NO_REFERENCE.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { readGray, type GrayImage } from '../../core/gray-image.js';
import { parseManifest, MANIFEST_FILE } from '../../inference/model-package.js';
import type { Manifest } from '../../inference/manifest-schema.js';
import { resizeGray } from '../../teach/frame-registration.js';
import { createRegistrar } from '../../../calibration/registration.js';
import { buildUndistortLut, remapU8 } from '../../../calibration/undistort-map.js';
import { CalibrationStore } from '../../../calibration/calibration-file.js';
import { CalibrationBadInputError, CalibrationFileInvalidError, CalibrationNoReferenceError } from '../../../calibration/errors.js';
import { liveModel } from '../live-model.js';
import { NotFoundError } from '../errors.js';
import { liveGray, renderRegistrationOverlay } from './calibration-views.js';
import { BinaryReply, ErrorReply, authErrors } from './schemas.js';

const Size = Type.Object({ width: Type.Integer(), height: Type.Integer() });
const Xy = Type.Object({ dx: Type.Number(), dy: Type.Number() });
export const ReferenceCheck = Type.Object({
  ok: Type.Boolean(),
  /** shift of the part against the reference, in reference (model input) pixels */
  dx: Type.Number(), dy: Type.Number(),
  angleDeg: Type.Number(), quality: Type.Number(),
  reason: Type.Optional(Type.String()),
  minQuality: Type.Number(), maxShiftPx: Type.Number(), maxRotationDeg: Type.Number(),
  referenceSize: Size,
  /** the shift in camera-frame pixels (reference px × frame/reference) */
  frameShiftPx: Xy,
  /** the shift in mm on the belt (plane calibration's mm/px at the frame's scale); null without a plane */
  shiftMm: Type.Union([Xy, Type.Null()]),
  frame: Type.Object({ width: Type.Integer(), height: Type.Integer(), source: Type.Union([Type.Literal('live'), Type.Literal('file')]) }),
  model: Type.Object({ name: Type.String(), version: Type.String(), packageDir: Type.String(), reference: Type.String() }),
  /** time of the resize, the registrar's set-up (reference pyramid and spectra) and the registration, ms */
  ms: Type.Number(),
  /** the binned frame went through the lens table before registration (a lens calibration for this frame size) */
  undistorted: Type.Boolean(),
  overlayUrl: Type.String(),
});
const errs = { ...authErrors, 404: ErrorReply, 409: ErrorReply, 422: ErrorReply, 503: ErrorReply };
/** overlays kept for the page to fetch (newest last) */
const KEEP_OVERLAYS = 8;

export const calibrationReferenceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const overlays = new Map<string, Buffer>();
  const tags = ['calibration'];

  /** The package to check against: a given folder, else the live model's. */
  const packageOf = async (dir: string | undefined): Promise<{ dir: string; manifest: Manifest }> => {
    let pkgDir = dir ? resolve(dir) : undefined;
    if (!pkgDir) {
      const live = await liveModel(app);
      if (!live.packageDir) throw new CalibrationNoReferenceError(`the station does not say where the live model ${live.name}@${live.version} is`);
      pkgDir = live.packageDir;
    }
    const text = await readFile(join(pkgDir, MANIFEST_FILE), 'utf8').catch((err: Error) => {
      throw new CalibrationBadInputError(`cannot read the model package ${pkgDir}: ${err.message}`);
    });
    let manifest: Manifest;
    try { manifest = parseManifest(text, join(pkgDir, MANIFEST_FILE)); } catch (err) { throw new CalibrationBadInputError((err as Error).message); }
    return { dir: pkgDir, manifest };
  };

  app.post('/api/calibration/reference/check', {
    preHandler: app.requireRole('admin'),
    schema: {
      description: 'Register the newest camera frame (or an image on the station) to the golden reference of the live model package '
        + '(or of a package folder on the station): shift, rotation and quality against the manifest limits, and an overlay PNG. '
        + 'A frame that cannot be registered is ok=false with the reason; a model without registration is a 409.',
      tags,
      body: Type.Object({
        imagePath: Type.Optional(Type.String({ minLength: 1, description: 'an image file on the station instead of the newest frame' })),
        packageDir: Type.Optional(Type.String({ minLength: 1, description: 'a model package folder on the station instead of the live model' })),
      }, { additionalProperties: false }),
      response: { 200: ReferenceCheck, ...errs },
    },
  }, async (req) => {
    const { dir, manifest } = await packageOf(req.body.packageDir);
    const reg = manifest.registration;
    if (!reg) throw new CalibrationNoReferenceError(`model ${manifest.name}@${manifest.version} has no registration (teach a package from good parts to get one)`);
    const [, , H, W] = manifest.input.shape as [number, number, number, number];
    const reference = await readGray(join(dir, reg.reference)).catch((err: Error) => { throw new CalibrationFileInvalidError(reg.reference, err.message); });
    if (reference.width !== W || reference.height !== H) {
      throw new CalibrationFileInvalidError(reg.reference, `is ${reference.width}x${reference.height}, the model input ${W}x${H}`);
    }
    const img: GrayImage = req.body.imagePath
      ? await readGray(req.body.imagePath).catch((err: Error) => { throw new CalibrationBadInputError(err.message); })
      : await liveGray(app);

    const t0 = performance.now();
    const small = new Uint8Array(W * H);
    if (img.width === W && img.height === H) small.set(img.data);
    else resizeGray(img.data, img.width, img.height, small, W, H, manifest.input.resize === 'area');
    // with a lens calibration for this frame size, the station undistorts the binned bytes before
    // registering them (frame-registration.ts): so does the check
    const lens = app.settings.calibrationDir ? new CalibrationStore(app.settings.calibrationDir).current()?.lens : undefined;
    const undistorted = Boolean(lens && lens.imageSize.width === img.width && lens.imageSize.height === img.height
      && img.width % W === 0 && img.height % H === 0 && (img.width !== W || img.height !== H));
    if (undistorted) {
      const lut = buildUndistortLut(lens!.camera, img, img.width / W, img.height / H);
      const distorted = Uint8Array.from(small);
      remapU8(distorted, lut, small);
    }
    const registrar = createRegistrar(reference, reg);
    const r = registrar.register({ width: W, height: H, data: small });
    const ms = performance.now() - t0;

    const finite = Number.isFinite(r.dx + r.dy + r.angleDeg);
    let warped: Uint8Array | null = null;
    if (finite && !/^blank|^image is/.test(r.reason ?? '')) {
      warped = new Uint8Array(W * H);
      registrar.warp({ width: W, height: H, data: small }, r, warped);
    }
    const png = await renderRegistrationOverlay(reference, small, warped, { ...r, minQuality: reg.minQuality });
    const id = randomBytes(8).toString('hex');
    overlays.set(id, png);
    while (overlays.size > KEEP_OVERLAYS) overlays.delete(overlays.keys().next().value!);

    const sx = img.width / W;
    const sy = img.height / H;
    const frameShiftPx = { dx: r.dx * sx, dy: r.dy * sy };
    const plane = app.settings.calibrationDir ? new CalibrationStore(app.settings.calibrationDir).current()?.plane : undefined;
    const shiftMm = plane ? { dx: frameShiftPx.dx * plane.mmPerPxX, dy: frameShiftPx.dy * plane.mmPerPxY } : null;
    return {
      ok: r.ok, dx: r.dx, dy: r.dy, angleDeg: r.angleDeg, quality: r.quality, ...(r.reason ? { reason: r.reason } : {}),
      minQuality: reg.minQuality, maxShiftPx: reg.maxShiftPx, maxRotationDeg: reg.maxRotationDeg, referenceSize: { width: W, height: H },
      frameShiftPx, shiftMm, frame: { width: img.width, height: img.height, source: req.body.imagePath ? 'file' as const : 'live' as const },
      model: { name: manifest.name, version: manifest.version, packageDir: dir, reference: reg.reference }, ms, undistorted,
      overlayUrl: `/api/calibration/reference/overlay.png?id=${id}`,
    };
  });

  app.get('/api/calibration/reference/overlay.png', {
    preHandler: app.requireRole('admin'),
    schema: {
      description: 'The overlay of a recent registration check: the reference in red, the frame in cyan, before and after the warp', tags,
      produces: ['image/png'],
      querystring: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }, { additionalProperties: false }),
      response: { 200: BinaryReply, ...errs },
    },
  }, async (req, reply) => {
    const png = overlays.get(req.query.id);
    if (!png) throw new NotFoundError(`registration overlay ${req.query.id} (only the last ${KEEP_OVERLAYS} checks are kept)`);
    return reply.type('image/png').header('cache-control', 'no-store').send(png);
  });
};
