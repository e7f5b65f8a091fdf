/**
 * The station as a Sparkplug B edge node, against a real mosquitto and a real Sparkplug host (mqtt.js subscriber +
 * sparkplug-payload decoder):
 *  - a station on the simulated line publishes every stored part; the broker is killed mid-run and restarted on the
 *    same port; the host receives every part the station stored exactly once, in order (compared with the results
 *    database), sees NDEATH (the will, when the publisher worker dies) and rebirths with new bdSeqs, and seq numbers
 *    continuous within each birth;
 *  - the bounded backlog on its own (no station): a results database written here as the store worker writes it
 *    (WAL, the schema's migrations), the real edge-node worker tailing it, a broker that is not there at first.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import client from 'prom-client';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { migrate } from '../inspector/results/results-schema.js';
import { MqttEdgeNode } from '../inspector/mqtt/edge-node.js';
import { Mosquitto, SparkplugHost, sparkplugStream } from './helpers/mosquitto.js';
import { until } from './helpers/wait.js';
import { Station } from '../inspector/station/station.js';
import { Alarm } from '../inspector/station/alarms.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { FAULT_INJECTION_ENV } from '../inspector/station/fault-injection.js';
import * as sp from '../inspector/mqtt/sparkplug.js';
import { lineOptions, stopLineAndCapture, triggeredCamera } from './helpers/line.js';

const require = createRequire(import.meta.url);
const GROUP = 'backlog-test';

const FOLDER = 'test-images/test/parts';
const SGROUP = 'line-7';

describe('a station as a Sparkplug B edge node through a broker crash', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-mqtt-station-'));
  let broker: Mosquitto;
  let host: SparkplugHost;
  let sim: PlcSimulator;
  let station: Station | null = null;
  const stream = () => sparkplugStream(host.messages, 'station-a');

  beforeAll(async () => {
    process.env[FAULT_INJECTION_ENV] = '1'; // testHooks: the edge node's worker can be killed (debugKill)
    broker = await Mosquitto.start();
    host = await SparkplugHost.start(broker.url, 'scada', SGROUP);
    const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 150, certificateFolder: join(work, 'pki-plc'), logger,
      line: lineOptions({ rate: 15, triggerPort, folder: FOLDER }) });
    await sim.start();
    station = await Station.start(resolveConfig({
      station: { name: 'station-a' },
      camera: { ...triggeredCamera({ triggerPort, folder: FOLDER }), stallTimeoutMs: 15_000 }, // a loaded CI machine is no stalled camera
      model: { providers: ['cpu'], intraOpNumThreads: 1 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'none' },
      server: { enabled: false }, retention: { enabled: false },
      mqtt: { enabled: true, url: broker.url, groupId: SGROUP, primaryHostId: 'scada', batchMaxParts: 4, pollMs: 50, statsMs: 200,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 } },
    }), logger);
  }, 120_000);

  afterAll(async () => {
    await station?.stop();
    await sim?.stop();
    await host?.close();
    await broker?.stop();
    delete process.env[FAULT_INJECTION_ENV];
    rmSync(work, { recursive: true, force: true });
  });

  it('every stored part reaches the host once, in order, through NCMD rebirth, a broker kill and a publisher death', async () => {
    const s = station!;
    sim.startLine();
    await until(() => stream().parts.length >= 15, 60_000, 'the first parts at the host');
    await until(() => s.health().mqtt?.connection === 'online', 30_000, 'the station to report the edge node online');
    expect(s.health().mqtt).toMatchObject({ state: 'up', connection: 'online', edgeNode: 'station-a' });

    // NCMD Node Control/Rebirth: NBIRTH + DBIRTH again on the same connection (same bdSeq)
    await host.rebirth(SGROUP, 'station-a');
    await until(() => stream().births.length >= 2, 30_000, 'the rebirth');

    // the broker crashes (SIGKILL: no will, nothing flushed); the line goes on
    await broker.kill();
    await until(() => s.alarms.isRaised(Alarm.MQTT_DOWN), 30_000, 'MQTT_DOWN');
    expect(s.health().mqtt).toMatchObject({ state: 'degraded', connection: 'down' });
    expect(s.health().alarms.some((a) => a.startsWith('MQTT_DOWN'))).toBe(true);
    const atKill = s.loop.rec.parts;
    await until(() => s.loop.rec.parts >= atKill + 20, 60_000, '20 parts while the broker is down');
    await broker.run(); // same port
    await until(() => stream().births.length >= 3 && s.mqtt!.stats?.connection === 'online', 60_000, 'the birth on the restarted broker');
    expect(s.alarms.isRaised(Alarm.MQTT_DOWN)).toBe(false);

    // the publisher worker dies: the broker sends its will (NDEATH); the respawned worker births with a new bdSeq
    await until(() => stream().parts.length >= atKill + 25, 60_000, 'parts after the restart');
    await s.mqtt!.debugKill();
    await until(() => stream().deaths.length >= 1, 30_000, 'NDEATH (the will)');
    await until(() => stream().births.length >= 4, 60_000, 'the birth of the respawned worker');

    await stopLineAndCapture(s, sim, 60_000);
    await s.store.flush();
    const rows = (await s.store.query({ runId: s.runId, limit: 100_000 })).sort((a, b) => a.id - b.id);
    await until(() => stream().parts.length >= rows.length, 60_000, `all ${rows.length} stored parts at the host`);
    await s.stop();
    station = null;
    await until(() => stream().deaths.length >= 2, 30_000, 'NDEATH of the clean stop');

    const st = stream();
    // every stored part exactly once (after the documented redelivery rule), in rowid order, with its row's facts
    expect(st.parts.map((p) => p.index)).toEqual(rows.map((r) => r.id));
    expect(st.parts.map((p) => [p.lineEpoch, p.partId, p.verdict, p.code])).toEqual(rows.map((r) => [r.line_epoch, r.part_id, r.verdict, r.code]));
    expect(st.parts.every((p) => p.runId === s.runId)).toBe(true);
    expect(st.unexplainedGaps).toEqual([]);
    expect(st.dropped).toBe(0);
    // a repeat is only ever the QoS 1 case: sent, not acknowledged when the connection went, resent in the next birth
    for (const r of st.redeliveries) expect(r.afterBirth, `index ${r.index} repeated`).toBeGreaterThanOrEqual(3);
    console.log(`${rows.length} parts, ${st.redeliveries.length} redelivered after a reconnect (recognised by index), births bdSeq ${st.births.join(',')}, deaths ${st.deaths.join(',')}`);
    // seq 0..255 continuous within every birth; bdSeq: same on NCMD rebirth, new per connection; deaths match births
    expect(st.seqErrors).toEqual([]);
    expect(st.births).toHaveLength(4);
    expect(st.births[1]).toBe(st.births[0]);
    expect(new Set([st.births[1], st.births[2], st.births[3]]).size).toBe(3);
    expect(st.deaths).toEqual([st.births[2], st.births[3]]);
    expect(st.ddataPerBirth.every((n, i) => i === 0 || n > 0 || i === 1)).toBe(true);

    // births say what the station is; NDATA follows its counters
    const nbirth = host.messages.find((m) => m.verb === 'NBIRTH' && m.node === 'station-a')!;
    const metric = (m: typeof nbirth, name: string): unknown => m.payload.metrics?.find((x) => x.name === name)?.value;
    expect(metric(nbirth, sp.M.rebirth)).toBe(false);
    expect(metric(nbirth, sp.M.station)).toBe('station-a');
    expect(metric(nbirth, sp.M.modelVersion)).toBe(rows[0]!.model_version);
    expect(metric(nbirth, sp.M.modelName)).toBe(rows[0]!.model_name);
    const dbirth = host.messages.find((m) => m.verb === 'DBIRTH' && m.node === 'station-a')!;
    expect(dbirth.topic).toBe(`spBv1.0/${SGROUP}/DBIRTH/station-a/inspection`);
    expect((metric(dbirth, sp.M.results) as { columns: string[] }).columns).toEqual(sp.RESULT_COLUMNS.map(([c]) => c));
    const counts = host.messages.filter((m) => m.verb === 'NDATA' && m.node === 'station-a').map((m) => sp.toNumber(metric(m, sp.M.parts)));
    expect(counts.length).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeGreaterThan(0);
  }, 300_000);
});

describe('bounded backlog while the broker is away', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-mqtt-backlog-'));
  const dbPath = join(work, 'results.sqlite');
  let db: BetterSqlite3.Database;
  let broker: Mosquitto | null = null;
  let host: SparkplugHost | null = null;
  let node: MqttEdgeNode | null = null;
  let partId = 0;
  const registry = new client.Registry();
  const downs: boolean[] = [];

  const store = (n: number): void => {
    const ins = db.prepare(`INSERT INTO results (run_id, seq, captured_at_ms, verdict, code, score, model_name, model_version, provider,
      plc_status, line_epoch, part_id) VALUES ('run-1', ?, ?, ?, ?, ?, 'default', '1.0.0', 'cpu', 'ok', 7, ?)`);
    db.transaction(() => {
      for (let i = 0; i < n; i++) { partId++; ins.run(partId, Date.now(), partId % 3 ? 'pass' : 'reject', partId % 3 ? 0 : 1, partId / 1000, partId); }
    })();
  };

  beforeAll(() => {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    db = new Database(dbPath);
    db.pragma('journal_mode = WAL');
    migrate(db);
    store(3); // history from before the edge node was enabled: not replayed
  });

  afterAll(async () => {
    await node?.close();
    await host?.close();
    await broker?.stop();
    db?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('drops the oldest over maxBacklog and counts them; the rest arrive in order, then new ones', async () => {
    const port = await freePort(); // nobody listens here yet
    const config = resolveConfig({ mqtt: {
      enabled: true, url: `mqtt://127.0.0.1:${port}`, groupId: GROUP, primaryHostId: 'backlog-host', maxBacklog: 5, batchMaxParts: 2,
      pollMs: 20, statsMs: 50, reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    } }).mqtt;
    node = await MqttEdgeNode.start({
      config, dbPath, stationName: 'station-b', registry, log: logger, onDown: (d) => downs.push(d),
      state: () => ({ modelName: 'default', modelVersion: '1.0.0', parts: partId, notInspected: 0, plcWrites: partId, plcWriteErrors: 0, alarms: [] }),
    });
    await until(() => node!.stats?.connection === 'down', 30_000, 'the edge node to find no broker');
    expect(downs).toContain(true);
    store(20); // parts 4..23 while the broker is away: only the newest 5 fit
    await until(() => node!.stats?.dropped === 15, 30_000, 'the 15 oldest to be skipped');
    expect(node.health()).toMatchObject({ state: 'degraded', connection: 'down', dropped: 15 });

    broker = await Mosquitto.start(port);
    host = await SparkplugHost.start(broker.url, 'backlog-host', GROUP);
    await until(() => sparkplugStream(host!.messages, 'station-b').parts.length === 5, 30_000, 'the 5 kept parts');
    store(3);
    await until(() => sparkplugStream(host!.messages, 'station-b').parts.length === 8, 30_000, 'the 3 new parts');

    const s = sparkplugStream(host.messages, 'station-b');
    // the kept ones are the newest, in order, each once; the gap is exactly the dropped count
    expect(s.parts.map((p) => p.partId)).toEqual([19, 20, 21, 22, 23, 24, 25, 26]);
    expect(s.parts.map((p) => p.index)).toEqual([19, 20, 21, 22, 23, 24, 25, 26]);
    expect(s.dropped).toBe(15);
    expect(s.unexplainedGaps).toEqual([]);
    expect(s.redeliveries).toEqual([]);
    expect(s.seqErrors).toEqual([]);
    expect(s.births).toHaveLength(1);
    expect(s.parts.find((p) => p.partId === 21)).toMatchObject({ lineEpoch: 7, verdict: 'reject', code: 1, score: 0.021, modelVersion: '1.0.0' });
    await until(() => downs.at(-1) === false, 10_000, 'MQTT_DOWN to clear');
    const metrics = await registry.getSingleMetricAsString('inspector_mqtt_dropped_total');
    expect(metrics).toMatch(/inspector_mqtt_dropped_total 15$/m);

    // a clean stop says NDEATH with the birth's bdSeq
    await node.close();
    node = null;
    await until(() => sparkplugStream(host!.messages, 'station-b').deaths.length === 1, 10_000, 'NDEATH');
    const end = sparkplugStream(host.messages, 'station-b');
    expect(end.deaths).toEqual(end.births);

    // a restart resumes from the persisted cursor: parts stored while it was stopped come next, nothing twice
    store(4);
    node = await MqttEdgeNode.start({
      config, dbPath, stationName: 'station-b', registry: new client.Registry(), log: logger, onDown: () => undefined,
      state: () => ({ modelName: 'default', modelVersion: '1.0.0', parts: partId, notInspected: 0, plcWrites: partId, plcWriteErrors: 0, alarms: [] }),
    });
    await until(() => sparkplugStream(host!.messages, 'station-b').parts.length === 12, 30_000, 'the 4 parts stored while stopped');
    const again = sparkplugStream(host.messages, 'station-b');
    expect(again.parts.map((p) => p.partId)).toEqual([19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(again.redeliveries).toEqual([]);
    expect(again.unexplainedGaps).toEqual([]);
    expect(again.seqErrors).toEqual([]);
    expect(again.births).toHaveLength(2);
    expect(again.births[1]).not.toBe(again.births[0]); // a new bdSeq for the new connection (persisted)
  }, 120_000);
});
