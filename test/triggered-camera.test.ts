/**
 * The triggered replay camera, for real: a GStreamer appsrc pipeline (pipelines/replay-triggered.json)
 * fed by trigger telegrams over UDP on loopback. Every frame carries its trigger's (Epoch, PartId) and
 * the image of its item; a repeated id is never a second part; every trigger that does not become a
 * frame is reported lost, with its id.
 */
import { describe, it, expect, afterAll } from 'vitest';
import dgram from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { rawFileName } from '../inspector/capture/replay-cache.js';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { createFrameSource } from '../inspector/capture/create-source.js';
import { encodeTrigger, decodeTrigger } from '../inspector/plc/trigger-telegram.js';
import { PRIME, REHEARSE, TriggeredFeed, type LostPart } from '../inspector/capture/triggered-feed.js';
import type { GstAppSrc } from '../inspector/capture/gst.js';
import type { Frame } from '../inspector/core/types.js';
import { until } from './helpers/wait.js';

const FOLDER = 'test-images/test/parts';
const items = readdirSync(FOLDER).filter((f) => f.endsWith('.png')).sort();

describe('replay-triggered camera', () => {
  const sock = dgram.createSocket('udp4');
  afterAll(() => sock.close());

  it('decodes only well-formed telegrams', () => {
    const t = { epoch: 7, partId: 42, item: 3 };
    expect(decodeTrigger(encodeTrigger(t))).toEqual(t);
    expect(decodeTrigger(Buffer.alloc(16))).toBeNull(); // no magic
    expect(decodeTrigger(encodeTrigger({ ...t, epoch: 0 }))).toBeNull();
    expect(decodeTrigger(Buffer.alloc(3))).toBeNull();
  });

  it('one frame per trigger, carrying its id and its item\'s image; repeats ignored; the rest reported lost', async () => {
    const triggerPort = await freePort('udp');
    const lost: LostPart[] = [];
    const source = await createFrameSource({ template: 'replay-triggered', width: 256, height: 256, folder: FOLDER,
      cacheDir: 'var/replay-cache-256', triggerPort, logger, stallTimeoutMs: 60_000 }, { onLost: (p) => lost.push(p) });
    await source.start();
    const frames: Frame[] = [];
    const pump = (async () => { for await (const f of source) frames.push(f); })();
    const send = (partId: number, item: number) => sock.send(encodeTrigger({ epoch: 99, partId, item }), triggerPort, '127.0.0.1');
    for (let id = 1; id <= 5; id++) { send(id, id * 7); await until(() => frames.length >= id, 30_000, `frame ${id}`); }
    send(5, 0); // a repeated id: not a part
    send(3, 0); // an older id: not a part
    send(6, 1);
    await until(() => frames.length >= 6, 30_000, 'frame 6');
    expect(frames.map((f) => f.partId)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(frames.every((f) => f.lineEpoch === 99)).toBe(true);
    expect(frames.map((f) => f.sourceRef?.split('/').pop())).toEqual([7, 14, 21, 28, 35, 1].map((i) => items[i % items.length]));
    // the pixels are the item's image, not only its name: the id and the image travel together
    [7, 14, 21, 28, 35, 1].forEach((item, i) => {
      expect(Buffer.compare(Buffer.from(frames[i]!.data), readFileSync(join('var/replay-cache-256', rawFileName(item % items.length)))), `frame ${i + 1}`).toBe(0);
    });
    expect(lost).toEqual([]);
    source.stop();
    await pump;
  }, 120_000);

  it('primes the camera path one frame at a time, and stops priming at the first trigger', () => {
    const images = [Buffer.from([0]), Buffer.from([1]), Buffer.from([2])];
    const pushed: number[] = [];
    const src = { push: (b: Buffer) => { pushed.push(b[0]!); } } as unknown as GstAppSrc;
    const feed = new TriggeredFeed({ port: 0, images, primeFrames: 4, log: logger, onLost: () => undefined });
    feed.attach(src);
    expect(pushed).toHaveLength(1); // one at a time: a trigger never waits behind a burst of them
    expect(feed.take()).toBe(PRIME);
    expect(feed.take()).toBe(PRIME);
    expect(pushed).toHaveLength(3);
    feed.trigger({ epoch: 1, partId: 1, item: 2 }); // the line runs: the priming frame in flight is the last
    expect(feed.take()).toBe(PRIME);
    expect(feed.take()).toMatchObject({ epoch: 1, partId: 1, item: 2 });
    expect(feed.take()).toBeNull();
    expect(pushed).toEqual([1, 2, 0, 2]); // three priming frames, then the part's own image
    expect(feed.stats.primed).toBe(3);
    // a new pipeline primes again
    feed.detach();
    feed.attach(src);
    expect(feed.take()).toBe(PRIME);
    expect(feed.take()).toBe(PRIME);
    expect(feed.stats.primed).toBe(6); // 3 before; attach pushed one, each take() of a priming frame the next
  });

  it('rehearses on request before the line runs, never after its first trigger; a lost rehearsal frame is no part', () => {
    const images = [Buffer.from([0]), Buffer.from([1])];
    const pushed: number[] = [];
    const lost: LostPart[] = [];
    const src = { push: (b: Buffer) => { pushed.push(b[0]!); } } as unknown as GstAppSrc;
    const feed = new TriggeredFeed({ port: 0, images, primeFrames: 1, log: logger, onLost: (p) => lost.push(p) });
    expect(feed.rehearse()).toBe(false); // no pipeline yet
    feed.attach(src);
    expect(feed.take()).toBe(PRIME);
    expect(feed.rehearse()).toBe(true);
    expect(feed.take()).toBe(REHEARSE);
    expect(feed.rehearse()).toBe(true);
    feed.detach(); // the pipeline went with a rehearsal frame in it: nothing to report
    expect(lost).toEqual([]);
    feed.attach(src);
    expect(feed.take()).toBe(PRIME);
    feed.trigger({ epoch: 1, partId: 1, item: 0 });
    expect(feed.rehearse()).toBe(false); // the line runs: parts only
    expect(feed.take()).toMatchObject({ epoch: 1, partId: 1 });
    expect(feed.stats.rehearsed).toBe(2);
    expect(pushed).toHaveLength(5); // 2 primes, 2 rehearsals, 1 part
  });
});
