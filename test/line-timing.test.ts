/**
 * The PLC simulator's per-part timing record (plc/line-timing.ts), read the way the benchmark reads
 * it: the simulator in its own process (PlcSimProcess), results written by the station's OPC UA
 * link, the record fetched over IPC. Both processes read CLOCK_MONOTONIC (process.hrtime.bigint()),
 * so this test brackets every instant the simulator recorded with instants of its own:
 *  - a part's photo-eye is before the test saw the part counted, and before its result was sent;
 *  - its latch is after its write was sent and before the write's answer came back;
 *  - one latch per part that got a result (the first: a duplicate does not move it), none for a part
 *    without one, `late` exactly for the result that came after the window; ids as the PLC numbered.
 * No wall-clock threshold: every wait is on a condition.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { PlcSimProcess } from '../inspector/plc/plc-sim-process.js';
import { PlcLink } from '../inspector/plc/plc-link.js';
import { defaultPlcNodeIds } from '../inspector/plc/plc-contract.js';
import { sleep } from './helpers/wait.js';

const GATE_MS = 1000; // generous: an in-time write must land in time on a loaded 2-core box

describe('PLC simulator: photo-eye and latch times per part, one clock with the station', () => {
  const work = mkdtempSync(join(tmpdir(), 'line-timing-test-'));
  let sim: PlcSimProcess;
  let link: PlcLink;
  const eye = dgram.createSocket('udp4');

  beforeAll(async () => {
    sim = await PlcSimProcess.start({ port: await freePort(), photoEyePort: 0, gateWindowMs: GATE_MS, logIntervalMs: 0 });
    link = new PlcLink({ endpoint: sim.endpoint, nodeIds: defaultPlcNodeIds, heartbeatMs: 200, security: { mode: 'None' },
      certificateFolder: join(work, 'pki-station'), reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, logger });
    await link.start();
    expect(link.state).toBe('connected');
  });

  afterAll(async () => {
    eye.close();
    await link?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** Fire the photo-eye once; resolves with the new PartId and the instant the test saw it counted. */
  const fire = async (): Promise<{ id: number; seenNs: bigint }> => {
    const before = (await sim.counters()).LastPartId;
    await new Promise<void>((resolve, reject) => eye.send(Buffer.from([1]), sim.photoEyePort!, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    for (;;) {
      const c = await sim.counters();
      if (c.LastPartId > before) { expect(c.LastPartId).toBe(before + 1); return { id: c.LastPartId, seenNs: process.hrtime.bigint() }; }
      await sleep(5);
    }
  };
  /** Write a result; the instants just before the request left and just after its answer came. */
  const write = async (id: number, pass: boolean, epoch = sim.epoch): Promise<{ sentNs: bigint; answeredNs: bigint }> => {
    const sentNs = process.hrtime.bigint();
    await link.writeResult(id, epoch, pass, pass ? 0 : 1, pass ? 0.1 : 0.9);
    return { sentNs, answeredNs: process.hrtime.bigint() };
  };

  it('records the photo-eye of every part and the latch of its first result, bracketed by the test\'s own clock', async () => {
    const seen = new Map<number, bigint>();
    const writes = new Map<number, { sentNs: bigint; answeredNs: bigint }>();
    const part = async (): Promise<number> => { const p = await fire(); seen.set(p.id, p.seenNs); return p.id; };

    const accepted = await part();
    writes.set(accepted, await write(accepted, true));
    const rejected = await part();
    writes.set(rejected, await write(rejected, false));
    const duplicated = await part();
    writes.set(duplicated, await write(duplicated, true));
    const duplicateSentNs = process.hrtime.bigint();
    await write(duplicated, false); // a second result: counted as a duplicate, its latch stays the first one's
    const silent = await part(); // no result at all: the PLC's timeout rejects it
    const late = await part();
    const wrongEpoch = await part();
    await write(wrongEpoch, true, (sim.epoch % 0xfffffffe) + 1); // another epoch: refused, never latched
    writes.set(wrongEpoch, await write(wrongEpoch, true));
    for (;;) { // the late part's window closes (decided as a timeout), then its result comes
      if ((await sim.outcomes(late, late)).timeout === 1) break;
      await sleep(20);
    }
    writes.set(late, await write(late, true));

    const t = await sim.lineTiming(1, wrongEpoch);
    const origin = BigInt(t.originNs);
    expect(t.partIds).toEqual([accepted, rejected, duplicated, silent, late, wrongEpoch]);
    expect(t.partIds[0]).toBe(1);
    expect(t.unmatchedResults).toBe(0);
    for (let i = 0; i < t.partIds.length; i++) {
      const id = t.partIds[i]!;
      const eyeNs = origin + BigInt(t.photoEyeNs[i]!);
      if (i > 0) expect(t.photoEyeNs[i]!).toBeGreaterThan(t.photoEyeNs[i - 1]!); // fired one after another
      expect(eyeNs).toBeLessThanOrEqual(seen.get(id)!); // the photo-eye came before the test saw the part counted
      const w = writes.get(id);
      const latch = t.latchNs[i];
      if (!w) { expect(id).toBe(silent); expect(latch).toBeNull(); continue; }
      expect(latch).not.toBeNull();
      const latchNs = origin + BigInt(latch!);
      expect(latchNs).toBeGreaterThan(eyeNs);
      expect(latchNs).toBeGreaterThanOrEqual(w.sentNs); // latched after the request left the link …
      expect(latchNs).toBeLessThanOrEqual(w.answeredNs); // … and before its answer came back
      expect(t.late[i]).toBe(id === late);
    }
    const dupIndex = t.partIds.indexOf(duplicated);
    expect(origin + BigInt(t.latchNs[dupIndex]!)).toBeLessThan(duplicateSentNs); // the first result's latch, not the duplicate's
    // the record agrees with the PLC's own outcomes: exactly one latch per part that got a result
    const summary = await sim.outcomes(1, wrongEpoch);
    expect(summary.accepted + summary.rejected).toBe(t.latchNs.filter((l, i) => l !== null && !t.late[i]).length);
    expect(summary.late).toBe(t.late.filter(Boolean).length);
    expect(summary.noResult).toBe(t.latchNs.filter((l) => l === null).length);
    const c = await sim.counters();
    expect(c.DuplicateResults).toBe(1);
    expect(c.WrongEpochResults).toBe(1);
  });
});
