/**
 * The server as the station runs it: Fastify in its worker thread, questions
 * to the "station" over RPC, the live feed posted in batches from a LiveFeed
 * (ring on this thread) and fanned out over a real WebSocket, and the newest
 * frame read from the shared buffer and JPEG-encoded in the worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { ServerHost } from '../inspector/server/server-host.js';
import { LiveFeed, type LiveMessage } from '../inspector/server/live-feed.js';
import type { HealthReport } from '../inspector/server/station-view.js';
import { openReviewDb } from '../inspector/review/review-db.js';
import { Accounts } from '../inspector/review/accounts.js';

interface WsClient { on(e: 'message', f: (d: Buffer) => void): void; on(e: 'open' | 'close', f: () => void): void; on(e: 'error', f: (err: Error) => void): void; on(e: 'unexpected-response', f: (req: unknown, res: { statusCode: number }) => void): void; close(): void }
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string, opts?: { headers?: Record<string, string> }) => WsClient;

const W = 256;
const H = 200;
const health: HealthReport = {
  status: 'up', station: 'worker-test', uptimeS: 1, parts: 0,
  camera: { state: 'up', detail: 'replay: running', frames: 0, dropped: 0, restarts: 0, errors: 0 },
  model: { state: 'up', name: 'm', version: '3.0.0', provider: 'cpu', fallbacks: [] },
  plc: { state: 'up', detail: 'connected', endpoint: 'opc.tcp://x', writes: 0, writeErrors: 0, reconnects: 0 },
  alarms: [],
};

let dir: string;
let host: ServerHost;
let feed: LiveFeed;
let token: string;
let base: string;
let frameSeq = 100;
const frame = new Uint8Array(W * H);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inspector-srvw-'));
  const reviewDbPath = join(dir, 'review.sqlite');
  const db = openReviewDb(reviewDbPath);
  const accounts = new Accounts(db);
  token = accounts.createToken((await accounts.create('viewer', 'viewer-password', 'operator')).id, 't').token;
  db.close();
  feed = LiveFeed.allocate('run-w', W, H);
  for (let i = 0; i < frame.length; i++) frame[i] = (i % W) + Math.floor(i / W / 4); // smooth: survives JPEG
  host = await ServerHost.start({ host: '127.0.0.1', port: 0, liveFrameBuffer: feed.frameBuffer, app: { reviewDbPath, uiDir: join(dir, 'no-ui') } }, {
    health: async () => health,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'inspector_up 1\n' }),
    model: async () => ({ name: 'm', version: '3.0.0', threshold: 0.5, outputs: { defectClasses: ['pit'] } }),
    liveFrame: async () => {
      const next = feed.nextFrame(2000);
      feed.part(++frameSeq, 'pass', 0, 0.2, 3, '3.0.0', false, frame); // the part loop delivers the next frame
      return next;
    },
  }, logger.child({ test: 'server-worker' }));
  base = host.address;
  feed.start((m) => host.post(m), () => health, 50, 200);
});
afterAll(async () => { feed?.stop(); await host?.close(); rmSync(dir, { recursive: true, force: true }); });

const auth = () => ({ authorization: `Bearer ${token}` });

describe('server worker', () => {
  it('answers health and metrics from the station over RPC', async () => {
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(200);
    expect(((await h.json()) as HealthReport).station).toBe('worker-test');
    expect(await (await fetch(`${base}/metrics`)).text()).toBe('inspector_up 1\n');
    expect(((await (await fetch(`${base}/api/classes`, { headers: auth() })).json()) as { classes: string[] }).classes).toEqual(['pit']);
  });

  it('streams the parts the loop records, batched, with stats and health, over a WebSocket', async () => {
    const got: LiveMessage[] = [];
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`, { headers: auth() });
    await new Promise<void>((resolve, reject) => { ws.on('open', () => resolve()); ws.on('error', reject); });
    ws.on('message', (d) => got.push(JSON.parse(String(d)) as LiveMessage));
    for (let seq = 1; seq <= 30; seq++) feed.part(seq, seq % 3 ? 'pass' : 'reject', seq % 3 ? 0 : 1, seq / 100, 2 + seq / 10, '3.0.0', seq % 3 === 0, frame);
    const seen = () => got.flatMap((m) => (m.type === 'parts' ? m.items.map((p) => p.seq) : []));
    for (let i = 0; i < 300 && !(seen().includes(30) && got.some((m) => m.type === 'health')); i++) await new Promise((r) => setTimeout(r, 10));
    ws.close();
    expect(seen().filter((s) => s <= 30)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1)); // each part once, in order
    const batches = got.filter((m) => m.type === 'parts').length;
    expect(batches).toBeLessThan(30); // batched, not one message per part
    const stats = got.filter((m): m is Extract<LiveMessage, { type: 'stats' }> => m.type === 'stats').at(-1)!;
    expect(stats.rejectRate).toBeCloseTo(10 / 30, 9);
    expect(got.find((m) => m.type === 'health')).toMatchObject({ report: { station: 'worker-test' } });
  });

  it('refuses an anonymous WebSocket with 401', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('encodes the newest frame from the shared buffer as a JPEG in the worker', async () => {
    const res = await fetch(`${base}/api/live/frame.jpg?width=128`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-part-seq')).toBe(String(frameSeq));
    const jpeg = Buffer.from(await res.arrayBuffer());
    const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([128, 100]);
    // same picture: compare with the frame downscaled here (JPEG noise allowed)
    const ref = await sharp(Buffer.from(frame), { raw: { width: W, height: H, channels: 1 } }).resize({ width: 128 }).raw().toBuffer({ resolveWithObject: true });
    let diff = 0;
    const n = 128 * 100;
    for (let i = 0; i < n; i++) diff += Math.abs(ref.data[i * ref.info.channels]! - data[i * info.channels]!);
    expect(diff / n).toBeLessThan(4);
  });
});
