/**
 * The bench's API load (scripts/bench-api-load.ts): a fixed rate with a bound on open requests,
 * the route rotation over the parts it learnt, and the report's counts. The clock and fetch are
 * the test's own: no timers, no network, no wall-clock figure.
 */
import { describe, expect, it } from 'vitest';
import { ApiLoad } from '../scripts/bench-api-load.js';

interface Pending { url: string; resolve: (r: Response) => void; reject: (e: Error) => void }

/** A fetch whose requests stay open until the test answers them. */
function heldFetch() {
  const pending: Pending[] = [];
  const urls: string[] = [];
  const fetch = ((url: string) => new Promise<Response>((resolve, reject) => {
    urls.push(url);
    pending.push({ url, resolve, reject });
  })) as unknown as typeof globalThis.fetch;
  return { fetch, pending, urls };
}

const LIST = {
  items: [
    { runId: 'r1', seq: 1, hasImage: true, hasMap: true },
    { runId: 'r1', seq: 2, hasImage: false, hasMap: false },
  ],
};
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
/** Until every answered request has been read (bodies are read asynchronously). */
async function settled(load: ApiLoad): Promise<void> {
  while (load.inFlightNow > 0) await new Promise((r) => setImmediate(r));
}

describe('bench API load', () => {
  it('issues exactly elapsed × rate requests when the server keeps up', async () => {
    let now = 0;
    const f = heldFetch();
    const load = new ApiLoad({ baseUrl: 'http://x', token: 't', rate: 20, maxInFlight: 4, fetch: f.fetch, now: () => now });
    load.tick(); // t = 0: request 0 is due
    for (let ms = 0; ms <= 10_000; ms += 10) {
      now = ms;
      load.tick();
      while (f.pending.length) f.pending.shift()!.resolve(json(LIST));
      await settled(load);
    }
    const r = await load.stop();
    expect(r.due).toBe(201); // requests 0..200 are due by t = 10 s at 20/s
    expect(r.sent).toBe(r.due);
    expect(r.skipped).toBe(0);
    expect(r.by_status).toEqual({ 200: r.sent });
  });

  it('skips, never queues, what falls due while maxInFlight requests are open', async () => {
    let now = 0;
    const f = heldFetch();
    const load = new ApiLoad({ baseUrl: 'http://x', token: 't', rate: 20, maxInFlight: 3, fetch: f.fetch, now: () => now });
    for (now = 0; now <= 5_000; now += 50) load.tick(); // nobody answers for 5 s
    expect(f.pending.length).toBe(3);
    // the server answers: the next tick sends only what is due from now on, no burst of the skipped ones
    for (const p of f.pending.splice(0)) p.resolve(json(LIST));
    await settled(load);
    now = 5_050;
    load.tick();
    expect(f.urls.length).toBe(4);
    for (const p of f.pending.splice(0)) p.resolve(json(LIST));
    const r = await load.stop();
    expect(r.due).toBe(102); // requests 0..101 were due by t = 5.05 s at 20/s
    expect(r.sent).toBe(4);
    expect(r.skipped).toBe(98);
    expect(r.sent + r.skipped).toBe(r.due);
  });

  it('rotates over the review routes with the parts it learnt, and counts statuses and failures', async () => {
    let now = 0;
    const f = heldFetch();
    const load = new ApiLoad({ baseUrl: 'http://x', token: 'secret', rate: 1, maxInFlight: 1, fetch: f.fetch, now: () => now });
    const answers = [json(LIST), json({}), new Response(new Uint8Array(10), { status: 200 }), new Response('{}', { status: 404 }),
      json({}, 503), json(LIST)];
    for (let i = 0; i < answers.length; i++) {
      now = i * 1000;
      load.tick();
      expect(f.pending.length).toBe(1);
      f.pending.shift()!.resolve(answers[i]!);
      await settled(load);
    }
    now = answers.length * 1000;
    load.tick();
    f.pending.shift()!.reject(new Error('ECONNRESET'));
    const r = await load.stop();
    expect(f.urls.map((u) => u.replace('http://x', ''))).toEqual([
      '/api/parts?limit=50', '/api/parts/r1/1', '/api/parts/r1/1/image', '/api/parts/r1/1/map?width=640', '/api/stats',
      '/api/parts?limit=50', '/api/parts/r1/2',
    ]);
    expect(r.by_route).toEqual({ list: 2, detail: 2, image: 1, map: 1, stats: 1 });
    expect(r.by_status).toEqual({ 200: 4, 404: 1, 503: 1, error: 1 });
    expect(r.sent).toBe(7);
  });

  it('asks for the queue until it knows a part, and for an image where no part has a map', async () => {
    let now = 0;
    const f = heldFetch();
    const load = new ApiLoad({ baseUrl: 'http://x', token: 't', rate: 1, maxInFlight: 1, fetch: f.fetch, now: () => now });
    const noMaps = { items: [{ runId: 'r2', seq: 7, hasImage: true, hasMap: false }] };
    const answers = [json({ items: [] }), json(noMaps), json({}), json({}), json({})];
    for (let i = 0; i < answers.length; i++) {
      now = i * 1000;
      load.tick();
      f.pending.shift()!.resolve(answers[i]!);
      await settled(load);
    }
    const r = await load.stop();
    expect(r.by_route).toEqual({ list: 2, image: 2, stats: 1 });
    expect(f.urls.map((u) => u.replace('http://x', ''))).toEqual([
      '/api/parts?limit=50', '/api/parts?limit=50', '/api/parts/r2/7/image', '/api/parts/r2/7/image', '/api/stats',
    ]);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new ApiLoad({ baseUrl: 'http://x', token: 't', rate: 0 })).toThrow(/positive/);
  });
});
