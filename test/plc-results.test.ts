/**
 * PLC link and PLC simulator, for real: node-opcua server and client on
 * 127.0.0.1, random free ports, temp certificate folders, UDP photo-eye.
 * Here: the contract's NodeIds, and results from the station's link applied by the
 * simulator's PLC logic (counters, fail-safe, latching, epochs, a mismatched contract,
 * back-to-back writes). The heartbeat and the PLC going away: plc-link-lifecycle.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeIds, DataType } from 'node-opcua';
import { freePort } from '../inspector/core/free-port.js';
import { logger } from '../inspector/core/logger.js';
import {
  defaultPlcCounterNodeIds, defaultPlcNodeIds, resolvePlcNodeIds, type PlcCounters,
} from '../inspector/plc/plc-contract.js';
import { PlcLink } from '../inspector/plc/plc-link.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { GATE_MS, delta, rawClient, until } from './helpers/plc-tools.js';
import { sleep } from './helpers/wait.js';

describe('plc contract', () => {
  it('declares the default NodeIds in namespace 1 and validates overrides', () => {
    expect(defaultPlcNodeIds.partId).toBe('ns=1;s=Inspection.Result.PartId');
    expect(defaultPlcNodeIds.heartbeat).toBe('ns=1;s=Inspection.Heartbeat');
    expect(defaultPlcCounterNodeIds.RejectedTimeout).toBe('ns=1;s=Plc.Counters.RejectedTimeout');
    const ok = resolvePlcNodeIds({ partId: 'ns=3;s="DB_Vision"."PartId"' });
    expect(ok.problems).toEqual([]);
    expect(ok.nodeIds.partId).toBe('ns=3;s="DB_Vision"."PartId"');
    expect(ok.nodeIds.pass).toBe(defaultPlcNodeIds.pass);
    const bad = resolvePlcNodeIds({ pass: 'Inspection.Result.Pass', code: defaultPlcNodeIds.score, gate: 'ns=1;i=5' });
    expect(bad.problems).toHaveLength(3);
  });
});

describe('station link → PLC simulator: results, fail-safe, latency', () => {
  const work = mkdtempSync(join(tmpdir(), 'plc-test-'));
  let sim: PlcSimulator;
  let link: PlcLink;
  let raw: Awaited<ReturnType<typeof rawClient>>;
  let eye: dgram.Socket;

  beforeAll(async () => {
    sim = new PlcSimulator({ port: await freePort(), photoEyePort: 0, gateWindowMs: GATE_MS,
      certificateFolder: join(work, 'pki-plc'), logger });
    await sim.start();
    console.log(`PLC simulator: OPC UA server start ${sim.lastServerStartMs!.toFixed(0)} ms (first start, incl. certificate creation)`);
    // security None, explicitly: the hot-path figures stay comparable (SignAndEncrypt: test/plc-security-*.test.ts, plc-link-lifecycle.test.ts)
    link = new PlcLink({ endpoint: sim.endpoint, nodeIds: defaultPlcNodeIds, heartbeatMs: 200, security: { mode: 'None' },
      certificateFolder: join(work, 'pki-station'), reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, logger });
    await link.start();
    expect(link.state).toBe('connected');
    raw = await rawClient(sim.endpoint, join(work, 'pki-raw'));
    eye = dgram.createSocket('udp4');
  });

  afterAll(async () => {
    eye?.close();
    await raw?.close().catch(() => undefined);
    await link?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('applies every result to the part the photo-eye saw: counters exact, one outcome per part', async () => {
    const before = sim.counters();
    const N = 60;
    const expected = new Map<number, { pass: boolean; code: number; score: number }>();
    const writes: Promise<number>[] = [];
    for (let id = 1; id <= N; id++) {
      // photo-eye datagram; the result once the PLC has numbered the part (a result for a part
      // not triggered yet is never applied); requests are pipelined (not awaited)
      eye.send(Buffer.alloc(1), sim.photoEyePort!, '127.0.0.1');
      await until(() => sim.lastPartId >= id, 5000, `part ${id} triggered`);
      const r = id % 5 === 0 ? { pass: true, code: 3, score: 0.5 } // pass flag with a reject code: not an accept
        : id % 3 === 0 ? { pass: false, code: 1, score: 0.9 }
          : { pass: true, code: 0, score: id / 1000 };
      expected.set(id, r);
      writes.push(link.writeResult(id, sim.epoch, r.pass, r.code, r.score));
      if (id % 4 === 0) await sleep(2);
    }
    const rtts = await Promise.all(writes);
    expect(rtts.every((ms) => ms > 0)).toBe(true);
    await until(() => sim.counters().Parts === N && sim.pendingParts === 0, 3000, 'all parts decided');
    await sleep(GATE_MS + 50);
    const d = delta(before, sim.counters());
    const accepts = [...expected.values()].filter((r) => r.pass && r.code === 0).length;
    expect(accepts).toBe(32);
    expect(d).toMatchObject({ Parts: N, ResultsReceived: N, Accepted: accepts, Rejected: N - accepts, RejectedTimeout: 0,
      LateResults: 0, DuplicateResults: 0, SequenceMismatch: 0, OrphanResults: 0 });
    const outcomes = sim.outcomes();
    expect(outcomes.size).toBe(N);
    for (const [id, r] of expected) {
      const o = outcomes.get(id)!;
      expect(o, `part ${id}`).toBeDefined();
      expect(o.outcome, `part ${id}`).toBe(r.pass && r.code === 0 ? 'accepted' : 'rejected');
      expect([o.pass, o.code, o.score, o.late]).toEqual([r.pass, r.code, Math.fround(r.score), false]);
    }
    expect(link.counters.writes).toBe(N);
  });

  it('exposes the counters over OPC UA, read-only', async () => {
    const keys = Object.keys(defaultPlcCounterNodeIds) as (keyof PlcCounters)[];
    const values = await raw.session.read(keys.map((k) => ({ nodeId: defaultPlcCounterNodeIds[k], attributeId: AttributeIds.Value })));
    const c = sim.counters();
    keys.forEach((k, i) => expect(values[i]!.value.value, k).toBe(c[k]));
    const status = await raw.session.write({ nodeId: defaultPlcCounterNodeIds.Accepted, attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.UInt32, value: 0 } } });
    expect(status.name).toBe('BadNotWritable');
    expect(sim.counters().Accepted).toBe(c.Accepted);
  });

  it('fail-safe: no result → timeout reject; late result stays rejected; far-future pass accepts nothing', async () => {
    const before = sim.counters();
    // 1. three parts, no result: undecided inside the window, rejected by timeout after it
    const silent = [sim.partArrived(), sim.partArrived(), sim.partArrived()];
    await sleep(GATE_MS / 2);
    expect(silent.some((id) => sim.outcomes().has(id))).toBe(false);
    await sleep(GATE_MS + 30);
    for (const id of silent) expect(sim.outcomes().get(id)?.outcome).toBe('timeout');

    // 2. a valid accept written after the window: LateResults, the part stays rejected
    const lateId = sim.partArrived();
    await sleep(GATE_MS + 30);
    await link.writeResult(lateId, sim.epoch, true, 0, 0.01);
    const late = sim.outcomes().get(lateId)!;
    expect(late.outcome).toBe('timeout');
    expect(late.late).toBe(true);
    expect(late.resultAfterMs!).toBeGreaterThan(GATE_MS);

    // 3. a pass for a part the photo-eye has not triggered (far future): refused, never applied to other parts
    const farId = lateId + 1000;
    await link.writeResult(farId, sim.epoch, true, 0, 0.01);
    const next = [sim.partArrived(), sim.partArrived(), sim.partArrived()];
    await sleep(GATE_MS + 60);
    for (const id of next) expect(sim.outcomes().get(id)?.outcome).toBe('timeout');

    // 4. duplicate: first result wins
    const dupId = sim.partArrived();
    await link.writeResult(dupId, sim.epoch, false, 1, 0.9);
    await link.writeResult(dupId, sim.epoch, true, 0, 0.1);
    await sleep(GATE_MS + 30);
    expect(sim.outcomes().get(dupId)?.outcome).toBe('rejected');

    const d = delta(before, sim.counters());
    expect(d).toMatchObject({ Parts: 8, Accepted: 0, Rejected: 8, RejectedTimeout: 7, LateResults: 1,
      DuplicateResults: 1, OrphanResults: 1, ResultsReceived: 4 });
    expect(d.SequenceMismatch).toBeGreaterThanOrEqual(3); // jumps to lateId, farId, back to dupId
  });

  it('latches only values written before the strobe in the same request', async () => {
    const before = sim.counters();
    const id = sim.partArrived();
    // PartId first, then Pass/Code/Score (and no Epoch): a station that breaks the convention gets no accept
    const statuses = await raw.session.write([
      { nodeId: defaultPlcNodeIds.partId, attributeId: AttributeIds.Value, value: { value: { dataType: DataType.UInt32, value: id } } },
      { nodeId: defaultPlcNodeIds.pass, attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Boolean, value: true } } },
      { nodeId: defaultPlcNodeIds.code, attributeId: AttributeIds.Value, value: { value: { dataType: DataType.UInt16, value: 0 } } },
      { nodeId: defaultPlcNodeIds.score, attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Float, value: 0.1 } } },
    ]);
    expect(statuses.every((s) => s.isGood())).toBe(true);
    // registers now hold Pass=true, Code=0: a request with only the strobe must not reuse them
    const id2 = sim.partArrived();
    await raw.session.write({ nodeId: defaultPlcNodeIds.partId, attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.UInt32, value: id2 } } });
    // two results in one request, each with its own values before its strobe: applied in request order
    const [id3, id4] = [sim.partArrived(), sim.partArrived()];
    const wv = (nodeId: string, dataType: DataType, value: boolean | number) =>
      ({ nodeId, attributeId: AttributeIds.Value, value: { value: { dataType, value } } });
    const both = await raw.session.write([
      wv(defaultPlcNodeIds.pass, DataType.Boolean, true), wv(defaultPlcNodeIds.code, DataType.UInt16, 0),
      wv(defaultPlcNodeIds.score, DataType.Float, 0.25), wv(defaultPlcNodeIds.epoch, DataType.UInt32, sim.epoch),
      wv(defaultPlcNodeIds.partId, DataType.UInt32, id3),
      wv(defaultPlcNodeIds.pass, DataType.Boolean, false), wv(defaultPlcNodeIds.code, DataType.UInt16, 1),
      wv(defaultPlcNodeIds.score, DataType.Float, 0.75), wv(defaultPlcNodeIds.epoch, DataType.UInt32, sim.epoch),
      wv(defaultPlcNodeIds.partId, DataType.UInt32, id4),
    ]);
    expect(both.every((s) => s.isGood())).toBe(true);
    // node-opcua applied the values in order too: the variables hold the last ones
    const regs = await raw.session.read([defaultPlcNodeIds.pass, defaultPlcNodeIds.code, defaultPlcNodeIds.partId]
      .map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
    expect(regs.map((r) => r.value.value)).toEqual([false, 1, id4]);
    await sleep(GATE_MS + 30);
    const o = sim.outcomes();
    // the first two carried no Epoch: never applied, their parts time out (rejected)
    expect([id, id2, id3, id4].map((x) => o.get(x)?.outcome)).toEqual(['timeout', 'timeout', 'accepted', 'rejected']);
    expect([o.get(id3)?.score, o.get(id4)?.score]).toEqual([0.25, 0.75]);
    expect(delta(before, sim.counters())).toMatchObject({ Accepted: 1, Rejected: 3, RejectedTimeout: 2, ResultsReceived: 4,
      WrongEpochResults: 2 });
  });

  it('never applies a result of another epoch, and logs every outcome for the station to read back', async () => {
    const before = sim.counters();
    const id = sim.partArrived();
    await link.writeResult(id, (sim.epoch % 0xfffffffe) + 1, true, 0, 0.1); // another epoch: a restarted PLC's old numbering
    await until(() => sim.outcomes().has(id), 5000, 'the part decided');
    expect(sim.outcomes().get(id)?.outcome).toBe('timeout');
    const id2 = sim.partArrived();
    await link.writeResult(id2, sim.epoch, true, 0, 0.1);
    await until(() => sim.outcomes().has(id2), 5000, 'the second part decided');
    expect(sim.outcomes().get(id2)?.outcome).toBe('accepted');
    expect(delta(before, sim.counters())).toMatchObject({ WrongEpochResults: 1, Accepted: 1, RejectedTimeout: 1 });
    // the log as the station reads it, over OPC UA, in one request with its count
    const status = await link.readStatus();
    expect(status.counters.Epoch).toBe(sim.epoch);
    expect(status.counters.LastPartId).toBe(id2);
    const log = Array.from(status.log);
    expect(log.length).toBe(2 * Math.min(status.counters.OutcomeCount, 4096));
    const tail = log.slice(-4);
    expect(tail).toEqual([id, 3, id2, 1]); // timeout, accepted
  });

  it('refuses a PLC whose tags do not match the contract (missing tag, wrong data type)', async () => {
    const bad = new PlcLink({ endpoint: sim.endpoint, certificateFolder: join(work, 'pki-bad'), logger, security: { mode: 'None' },
      nodeIds: { ...defaultPlcNodeIds, code: 'ns=1;s=Plc.GateWindowMs', score: 'ns=1;s=Inspection.Result.Nope' },
      reconnect: { initialDelayMs: 5000, maxDelayMs: 5000 } });
    try {
      await bad.start();
      expect(bad.state).toBe('disconnected');
      expect(bad.lastError).toMatch(/score ns=1;s=Inspection\.Result\.Nope: BadNodeIdUnknown/);
      expect(bad.lastError).toMatch(/code ns=1;s=Plc\.GateWindowMs: data type 7, expected UInt16/);
      await expect(bad.writeResult(1, sim.epoch, true, 0, 0)).rejects.toMatchObject({ code: 'INSPECTOR_PLC_WRITE' });
      expect(bad.counters.writes).toBe(0);
    } finally {
      await bad.stop();
    }
  });

  it('500 back-to-back writes each land on their own part', async () => {
    const ms: number[] = [];
    for (let i = 0; i < 50; i++) { const id = sim.partArrived(); await link.writeResult(id, sim.epoch, true, 0, 0.1); } // warm-up
    const ids: number[] = [];
    for (let i = 0; i < 500; i++) {
      const id = sim.partArrived();
      ids.push(id);
      ms.push(await link.writeResult(id, sim.epoch, i % 7 !== 0, i % 7 === 0 ? 1 : 0, 0.1));
    }
    expect(ms.every((x) => x > 0 && Number.isFinite(x))).toBe(true);
    await until(() => ids.every((id) => sim.outcomes().has(id)), 10_000, 'the 500 parts decided');
    // each part got its own verdict; a write that a stall on a loaded box made late leaves its part
    // rejected (fail-safe), never accepted: how many were late is printed, not asserted
    const outcomes = sim.outcomes();
    let late = 0;
    ids.forEach((id, i) => {
      const o = outcomes.get(id)!;
      if (o.late || o.outcome === 'timeout') { late++; expect(o.outcome).toBe('timeout'); return; }
      expect(o.outcome, `part ${id}`).toBe(i % 7 !== 0 ? 'accepted' : 'rejected');
    });
    console.log(`500 back-to-back writes: ${late} late`);
  });
});
