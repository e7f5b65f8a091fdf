/**
 * The live page's feed.
 *   GET /api/live            WebSocket: {type:'parts',items}, {type:'stats',…}, {type:'health',report}  (any user)
 *   GET /api/live/frame.jpg  the newest camera frame, downscaled JPEG (any user; at most ~4 encodes/s,
 *                            callers in between get the last one)
 * The frame is copied by the station into a shared buffer (RPC `liveFrame`)
 * and encoded here, in the server worker, with sharp.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import sharp from 'sharp';
import type { LiveFrameInfo } from '../live-feed.js';
import type { LiveSocket } from '../live-hub.js';
import { ResultsUnavailableError } from '../errors.js';
import { BinaryReply, ErrorReply, authErrors } from './schemas.js';

const MIN_INTERVAL_MS = 250;

export const liveRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/api/live', {
    websocket: true,
    preHandler: app.requireRole(),
    schema: { description: 'WebSocket: parts (batched every ~250 ms), rolling stats, health (every second)', tags: ['live'], response: { ...authErrors } },
  }, (socket) => { app.live.add(socket as unknown as LiveSocket); });

  let last: { at: number; jpeg: Buffer; seq: number; width: number } | null = null;
  let inFlight: Promise<{ jpeg: Buffer; seq: number; width: number }> | null = null;
  const grab = async (width: number): Promise<{ jpeg: Buffer; seq: number; width: number }> => {
    if (!app.station.call) throw new ResultsUnavailableError('no station is running');
    const f = await app.station.call<LiveFrameInfo & { data?: Uint8Array }>('liveFrame');
    const pixels = f.data ?? (app.liveFrameBuffer ? new Uint8Array(app.liveFrameBuffer, 0, f.width * f.height) : null);
    if (!pixels) throw new ResultsUnavailableError('no live frame buffer');
    const copy = Buffer.from(pixels); // the station may overwrite the shared buffer for the next request
    const jpeg = await sharp(copy, { raw: { width: f.width, height: f.height, channels: 1 } })
      .resize({ width: Math.min(width, f.width) }).jpeg({ quality: 80 }).toBuffer();
    return { jpeg, seq: f.seq, width };
  };

  app.get('/api/live/frame.jpg', {
    preHandler: app.requireRole(),
    schema: {
      description: 'The newest camera frame as a downscaled JPEG (throttled)',
      tags: ['live'], produces: ['image/jpeg'],
      querystring: Type.Object({ width: Type.Integer({ minimum: 64, maximum: 4096, default: 640 }) }, { additionalProperties: false }),
      response: { 200: BinaryReply, ...authErrors, 503: ErrorReply },
    },
  }, async (req, reply) => {
    if (!(last && last.width === req.query.width && Date.now() - last.at < MIN_INTERVAL_MS)) {
      inFlight ??= grab(req.query.width).finally(() => { inFlight = null; });
      const r = await inFlight;
      last = { at: Date.now(), ...r };
    }
    return reply.type('image/jpeg').header('cache-control', 'no-store').header('x-part-seq', String(last.seq)).send(last.jpeg);
  });
};
