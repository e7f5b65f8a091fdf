/**
 * Model registry and lifecycle (role ml for changes; any login to read):
 *   GET    /api/models                           list, with live / shadow / rollback stack
 *   GET    /api/models/:name/:version            one package (manifest included)
 *   POST   /api/models                           multipart upload: model.onnx + manifest.json [+ extra files]
 *   POST   /api/models/:name/:version/shadow     run it beside the live model on every frame
 *   DELETE /api/models/shadow                    stop shadowing
 *   POST   /api/models/:name/:version/promote    validation gate, then a live swap
 *   POST   /api/models/rollback                  back to the previous live version
 *   DELETE /api/models/:name/:version            remove a package (not live, shadow or the rollback target)
 *   GET    /api/models/shadow/report             agreement of the shadow with the live verdicts
 *   GET    /api/models/history                   every registry change (who, when)
 * The lifecycle runs in the station's main thread: every route asks it over
 * RPC (registry/rpc-handlers.ts). An upload is written to a staging folder in
 * the registry root: a part whose name is path-like, repeated, or not a file
 * the manifest lists is a 400 (INSPECTOR_UPLOAD_NAME) and nothing is kept.
 * The station then verifies the signature (the trusted keys are its config)
 * and checks the package before it lands; a refused package is a 422 with the
 * package's code (INSPECTOR_MODEL_UNSIGNED / _SIGNATURE_INVALID / _KEY_UNKNOWN,
 * INSPECTOR_MODEL_HASH_MISMATCH, …). Push, promote and shadow are audited with
 * the signer's key id.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { MANIFEST_FILE, parseManifest } from '../../inference/model-package.js';
import type { Manifest } from '../../inference/manifest-schema.js';
import { MODEL_RPC, MODEL_RPC_TIMEOUT_MS } from '../../registry/rpc-handlers.js';
import { ModelUploadInvalidError } from '../../registry/errors.js';
import { UploadNames } from '../../registry/upload-names.js';
import { SIGNATURE_CODES } from '../../registry/signing.js';
import { ErrorReply, authErrors } from './schemas.js';

const Params = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', maxLength: 64 }),
  version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$', maxLength: 32 }),
});
const Ref = Type.Object({ name: Type.String(), version: Type.String() });
const MaybeRef = Type.Union([Ref, Type.Null()]);
/** the key id the package is signed with; null: unsigned (where signatures are not required) */
const Signer = Type.Optional(Type.Union([Type.String(), Type.Null()]));
const SignedRef = Type.Object({ name: Type.String(), version: Type.String(), signer: Signer });
const ListItem = Type.Object({
  name: Type.String(), version: Type.String(), live: Type.Boolean(), shadow: Type.Boolean(), previous: Type.Integer(),
  kind: Type.Union([Type.String(), Type.Null()]), threshold: Type.Union([Type.Number(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]), problem: Type.Optional(Type.String()),
});
/** one gate check: its measured figure in a few words and its verdict in a sentence (registry/validation-gate.ts) */
const Check = Type.Object({ check: Type.String(), ok: Type.Boolean(), figure: Type.String(), detail: Type.String() });
const Latency = Type.Object({
  p50Ms: Type.Number(), p99Ms: Type.Number(), budgetMs: Type.Number(), runs: Type.Integer(),
  live: Type.Union([Type.Object({ p50Ms: Type.Number(), p99Ms: Type.Number() }), Type.Null()], { description: 'the live model timed in the same run' }),
  margin: Type.Number(), slackMs: Type.Number(), limitMs: Type.Number({ description: 'min(budget, live P99 x (1 + margin) + slack)' }),
  rounds: Type.Integer(),
});
const ValidationReport = Type.Object({
  model: Ref, ok: Type.Boolean(), provider: Type.Union([Type.String(), Type.Null()]), checks: Type.Array(Check),
  latency: Type.Union([Latency, Type.Null()]),
  accuracy: Type.Union([Type.Object({ candidate: Type.Number(), live: Type.Union([Type.Number(), Type.Null()]), margin: Type.Number(), images: Type.Integer() }), Type.Null()]),
  reasons: Type.Array(Type.String()),
  signer: Signer,
});
const Disagreement = Type.Object({
  run_id: Type.String(), seq: Type.Integer(), score: Type.Union([Type.Number(), Type.Null()]), verdict: Type.String(),
  live_model_version: Type.String(), live_score: Type.Union([Type.Number(), Type.Null()]), live_verdict: Type.String(),
  image_path: Type.Union([Type.String(), Type.Null()]), source_ref: Type.Union([Type.String(), Type.Null()]),
});
const ShadowReport = Type.Object({
  shadow: MaybeRef, live: MaybeRef, since: Type.Union([Type.String(), Type.Null()]),
  stats: Type.Union([Type.Record(Type.String(), Type.Number()), Type.Null()]),
  compared: Type.Integer(), agree: Type.Integer(), disagree: Type.Integer(),
  shadowRejectsLivePasses: Type.Integer(), shadowPassesLiveRejects: Type.Integer(), disagreements: Type.Array(Disagreement),
});
const errors = { ...authErrors, 404: ErrorReply, 409: ErrorReply, 422: ErrorReply, 503: ErrorReply } as const;
/** a refused promotion: the error, with the gate's report (every check with its figure) when the gate ran */
const Refusal = Type.Object({ ...ErrorReply.properties, report: Type.Optional(ValidationReport) });

/** The gate's report travels over RPC after the first line of the refusal's message (registry/rpc-handlers.ts). */
function splitRefusal(message: string): { message: string; report?: unknown } {
  const nl = message.indexOf('\n');
  if (nl < 0) return { message };
  try {
    return { message: message.slice(0, nl), report: JSON.parse(message.slice(nl + 1)) };
  } catch {
    return { message };
  }
}

export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the station answers with the shapes the response schemas declare
  const call = <T = any>(method: string, args?: unknown): Promise<T> => {
    if (!app.station.call) throw Object.assign(new Error('no station behind this server'), { statusCode: 503, code: 'INSPECTOR_STATION_UNAVAILABLE' });
    return app.station.call<T>(method, args, MODEL_RPC_TIMEOUT_MS);
  };
  const audit = (actor: string, action: string, target: string, before: unknown, after: unknown): void => {
    app.audit.record({ actor, action: `model.${action}`, target, before, after });
  };

  app.get('/api/models', {
    preHandler: app.requireRole('operator', 'qa', 'ml'),
    schema: { description: 'Registered model packages, with the live and shadow model and the rollback stack', tags: ['models'],
      response: { 200: Type.Object({ models: Type.Array(ListItem), live: MaybeRef, shadow: MaybeRef, previous: Type.Array(Ref) }), ...errors } },
  }, async () => call(MODEL_RPC.list));

  app.get('/api/models/history', {
    preHandler: app.requireRole('operator', 'qa', 'ml'),
    schema: { description: 'Every registry change: who, when, what', tags: ['models'],
      response: { 200: Type.Array(Type.Object({ at: Type.String(), actor: Type.String(), action: Type.String(), model: MaybeRef,
        detail: Type.Optional(Type.String()), signer: Signer })), ...errors } },
  }, async () => call(MODEL_RPC.history));

  app.get('/api/models/shadow/report', {
    preHandler: app.requireRole('operator', 'qa', 'ml'),
    schema: { description: 'Agreement of the shadow model with the live verdicts: counts and the disagreements with their images', tags: ['models'],
      querystring: Type.Object({ name: Type.Optional(Params.properties.name), version: Type.Optional(Params.properties.version) }),
      response: { 200: ShadowReport, ...errors } },
  }, async (req) => call(MODEL_RPC.report, req.query.name && req.query.version ? { name: req.query.name, version: req.query.version } : undefined));

  app.get('/api/models/:name/:version', {
    preHandler: app.requireRole('operator', 'qa', 'ml'),
    schema: { description: 'One package: status and manifest', tags: ['models'], params: Params,
      response: { 200: Type.Intersect([ListItem, Type.Object({ manifest: Type.Unknown(), dir: Type.String() })]), ...errors } },
  }, async (req) => call(MODEL_RPC.show, req.params));

  app.post('/api/models', {
    preHandler: app.requireRole('ml'),
    schema: { description: 'Upload a package (multipart: model.onnx, manifest.json, signature.json and the extra files the manifest lists, '
      + 'each part named by its file name, once); the signature is verified and the package checked before it lands',
    tags: ['models'], consumes: ['multipart/form-data'], response: { 201: SignedRef, ...errors, 413: ErrorReply } },
  }, async (req, reply) => {
    if (!req.isMultipart()) throw new ModelUploadInvalidError('send multipart/form-data with model.onnx and manifest.json');
    const { dir } = await call<{ dir: string }>(MODEL_RPC.staging);
    let landed = false;
    try {
      const names = new UploadNames();
      // preservePath: the name as sent (busboy would cut '../../evil.onnx' down to 'evil.onnx')
      for await (const part of req.files({ preservePath: true })) {
        let name: string;
        try {
          name = names.accept(part.fieldname, part.filename); // path-like, repeated or unlisted: refused before a byte is written
        } catch (err) {
          part.file.resume();
          throw err;
        }
        await pipeline(part.file, createWriteStream(join(dir, name), { flags: 'wx' }));
        if (part.file.truncated) throw new ModelUploadInvalidError(`${name} is larger than the upload limit`);
        if (name === MANIFEST_FILE) {
          let manifest: Manifest;
          try {
            manifest = parseManifest(await readFile(join(dir, name), 'utf8'));
          } catch (err) {
            throw Object.assign(err as Error, { statusCode: 422 });
          }
          names.listed(manifest); // from here on, each part is checked against the manifest as it arrives
        }
      }
      names.complete(); // parts that came before the manifest
      let ref: { name: string; version: string; signer: string | null };
      try {
        // the station verifies the signature, then checks the package, then lands it
        ref = await call(MODEL_RPC.push, { stagingDir: dir, actor: req.user!.name });
      } catch (err) {
        const e = err as Error & { code?: string; statusCode?: number };
        if (SIGNATURE_CODES.has(e.code ?? '')) audit(req.user!.name, 'refused', 'model:push', null, { error: e.code, message: e.message });
        // a refused package (INSPECTOR_MODEL_* with a 5xx status as a start-up error) is the client's: 422
        if (/^INSPECTOR_MODEL_/.test(e.code ?? '') && (e.statusCode ?? 500) >= 500) e.statusCode = 422;
        throw e;
      }
      landed = true;
      audit(req.user!.name, 'push', `model:${ref.name}@${ref.version}`, null, ref);
      return reply.status(201).send(ref);
    } finally {
      if (!landed) await rm(dir, { recursive: true, force: true });
    }
  });

  for (const action of ['shadow', 'promote'] as const) {
    app.post(`/api/models/:name/:version/${action}`, {
      preHandler: app.requireRole('ml'),
      schema: {
        description: action === 'shadow' ? 'Run this model beside the live one on every frame (verdicts stored, never sent to the PLC)'
          : 'Validate (load, P99 latency, golden-set accuracy) and swap it in live; a refusal (422) leaves the live model untouched',
        tags: ['models'], params: Params,
        response: { 200: action === 'shadow' ? SignedRef : ValidationReport, ...errors, ...(action === 'promote' ? { 422: Refusal } : {}) },
      },
    }, async (req, reply) => {
      const before = await call<{ live: unknown; shadow: unknown }>(MODEL_RPC.list);
      const target = `model:${req.params.name}@${req.params.version}`;
      try {
        const out = await call(MODEL_RPC[action], { ...req.params, actor: req.user!.name });
        audit(req.user!.name, action, target, { live: before.live, shadow: before.shadow }, out);
        return out;
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code === 'INSPECTOR_MODEL_VALIDATION_FAILED' || SIGNATURE_CODES.has(code)) {
          audit(req.user!.name, 'refused', target, { live: before.live }, { error: (err as Error).message });
        }
        if (code === 'INSPECTOR_MODEL_VALIDATION_FAILED') {
          // the report as data (the Models page lists each check), not as JSON inside the message
          const { message, report } = splitRefusal((err as Error).message);
          return reply.status(422).send({ statusCode: 422, code, error: 'Unprocessable Entity', message, ...(report ? { report } : {}) });
        }
        throw err;
      }
    });
  }

  app.delete('/api/models/shadow', {
    preHandler: app.requireRole('ml'),
    schema: { description: 'Stop shadowing', tags: ['models'], response: { 200: Type.Object({ shadow: Type.Null() }), ...errors } },
  }, async (req) => {
    const out = await call(MODEL_RPC.unshadow, { actor: req.user!.name });
    audit(req.user!.name, 'unshadow', 'model:shadow', null, out);
    return out;
  });

  app.post('/api/models/rollback', {
    preHandler: app.requireRole('ml'),
    schema: { description: 'Swap back to the previous live model', tags: ['models'], response: { 200: Type.Object({ from: MaybeRef, to: Ref }), ...errors } },
  }, async (req) => {
    const out = await call(MODEL_RPC.rollback, { actor: req.user!.name });
    audit(req.user!.name, 'rollback', `model:${out.to.name}@${out.to.version}`, out.from, out.to);
    return out;
  });

  app.delete('/api/models/:name/:version', {
    preHandler: app.requireRole('ml'),
    schema: { description: 'Remove a package that is not live, shadow or the rollback target', tags: ['models'], params: Params,
      response: { 200: Type.Object({ deleted: Ref }), ...errors } },
  }, async (req) => {
    const out = await call(MODEL_RPC.delete, { ...req.params, actor: req.user!.name });
    audit(req.user!.name, 'delete', `model:${req.params.name}@${req.params.version}`, req.params, null);
    return out;
  });
};
