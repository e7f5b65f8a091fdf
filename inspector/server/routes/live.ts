/**
 * The live page's feed.
 *   GET /api/live            WebSocket: {type:'parts',items}, {type:'stats',…}, {type:'health',report}  (any user)
 *   GET /api/live/status     the operator's panel: disk use vs budget, images dropped, the PLC's counters,
 *                            Ready, the last rejects (any user; the latest the station posted, ≤ 1 s old)
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

  const Nullable = (t: ReturnType<typeof Type.Object>) => Type.Union([t, Type.Null()]);
  const OperatorReply = Type.Object({
    disk: Nullable(Type.Object({}, { additionalProperties: true, description: 'retention/disk-pacer.ts DiskStatus' })),
    images: Type.Object({ offered: Type.Integer(), written: Type.Integer(), dropped: Type.Integer(), failed: Type.Integer() }),
    plc: Nullable(Type.Object({}, { additionalProperties: true, description: 'plc/plc-contract.ts PlcCounters, as last read back' })),
    ready: Type.Boolean({ description: 'Station.Ready as the station last wrote it' }),
    lastRejects: Type.Array(Type.Object({}, { additionalProperties: true })),
  });
  app.get('/api/live/status', {
    preHandler: app.requireRole(),
    schema: { description: 'The operator\'s panel: disk use against the retention budget, images dropped, the PLC\'s outcome counters, Ready, the last rejects',
      tags: ['live'], response: { 200: OperatorReply, ...authErrors, 503: ErrorReply } },
  }, async () => {
    const m = app.live.latestOperator;
    if (!m) throw new ResultsUnavailableError('the station has not posted its status yet');
    const st = m.status; // plain copies: the reply schema's open objects take no interface types
    return { ...st, disk: st.disk ? { ...st.disk } : null, plc: st.plc ? { ...st.plc } : null, lastRejects: st.lastRejects.map((p) => ({ ...p })) };
  });

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
