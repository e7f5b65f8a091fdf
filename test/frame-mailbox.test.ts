import { describe, it, expect } from 'vitest';
import { LatestFrameMailbox } from '../inspector/capture/frame-source.js';
import type { Frame } from '../inspector/core/types.js';

const frame = (seq: number): Frame => ({ seq, capturedNs: BigInt(seq), width: 1, height: 1, format: 'GRAY8', data: new Uint8Array(1) });

describe('LatestFrameMailbox', () => {
  it('depth 1: the latest frame wins and every replaced frame is counted and handed back', async () => {
    const dropped: number[] = [];
    const m = new LatestFrameMailbox((f) => dropped.push(f.seq));
    m.offer(frame(1)); m.offer(frame(2)); m.offer(frame(3));
    expect((await m.next()).value?.seq).toBe(3);
    expect(dropped).toEqual([1, 2]);
    expect(m.stats).toMatchObject({ frames: 3, dropped: 2 });
  });

  it('depth 3: keeps the newest three in order, drops the oldest', async () => {
    const dropped: number[] = [];
    const m = new LatestFrameMailbox((f) => dropped.push(f.seq), 3);
    for (let s = 1; s <= 5; s++) m.offer(frame(s));
    const got = [(await m.next()).value?.seq, (await m.next()).value?.seq, (await m.next()).value?.seq];
    expect(got).toEqual([3, 4, 5]);
    expect(dropped).toEqual([1, 2]);
    expect(m.pending).toBe(0);
  });

  it('a waiting consumer gets the frame directly; close ends iteration and hands back what waited', async () => {
    const dropped: number[] = [];
    const m = new LatestFrameMailbox((f) => dropped.push(f.seq), 2);
    const next = m.next();
    m.offer(frame(7));
    expect((await next).value?.seq).toBe(7);
    m.offer(frame(8));
    m.close();
    expect(dropped).toEqual([8]);
    expect((await m.next()).done).toBe(true);
    expect(() => new LatestFrameMailbox(undefined, 0)).toThrow(RangeError);
  });

  it('a rehearsal frame never pushes a part\'s frame out, and is not counted as a camera frame or a drop', async () => {
    const dropped: Array<{ seq: number; rehearsal: boolean }> = [];
    const m = new LatestFrameMailbox((f) => dropped.push({ seq: f.seq, rehearsal: f.rehearsal === true }));
    const rehearsal = (): Frame => ({ ...frame(0), rehearsal: true });
    m.offer(frame(1));
    m.offer(rehearsal()); // the mailbox is full with a part: the rehearsal frame goes, the part stays
    expect((await m.next()).value?.seq).toBe(1);
    m.offer(rehearsal());
    m.offer(frame(2)); // a part replaces a waiting rehearsal frame
    expect((await m.next()).value?.seq).toBe(2);
    expect(dropped).toEqual([{ seq: 0, rehearsal: true }, { seq: 0, rehearsal: true }]);
    expect(m.stats).toMatchObject({ frames: 2, dropped: 0 });
  });
});
