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

const require = createRequire(import.meta.url);
const GROUP = 'backlog-test';

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
  }, 120_000);
});
