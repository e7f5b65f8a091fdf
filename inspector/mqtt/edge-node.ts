/**
 * Main-thread side of the Sparkplug B edge node: starts the edge-node worker (mqtt/edge-node-worker.ts) under
 * core/supervised-worker.ts, hands it the station's state through a narrow port (a function returning StationState,
 * posted every `statsMs`: never the Station object), and turns its reports into metrics, an alarm edge and /health.
 *
 * The part loop never calls into this: parts reach the broker through the results database the store worker writes
 * (results-tail.ts). A dead worker is 'worker-death' / 'worker-ready' (station/worker-deaths.ts: WORKER_RESTART);
 * its successor resumes from the persisted cursor, so a death loses nothing.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import client from 'prom-client';
import type { Logger } from '../core/logger.js';
import { SupervisedWorker } from '../core/supervised-worker.js';
import { relayWorkerEvents } from '../core/worker-events.js';
import type { StationConfig } from '../station/config.js';
import type { StationState } from './sparkplug.js';
import type { EdgeNodeStats, EdgeNodeWorkerData, FromEdgeNodeWorker, ToEdgeNodeWorker } from './edge-node-protocol.js';
import type { MqttHealth } from './mqtt-health.js';

const WORKER_URL = new URL('./edge-node-worker.ts', import.meta.url);

export interface MqttEdgeNodeOptions {
  config: StationConfig['mqtt'];
  dbPath: string;
  stationName: string;
  /** the narrow port: the station's counters, alarms and live model, read every statsMs */
  state: () => StationState;
  /** the station's metrics registry (inspector_mqtt_*) */
  registry: client.Registry;
  /** MQTT_DOWN: raised while the broker connection is lost or refused */
  onDown: (down: boolean, detail: string) => void;
  log: Logger;
  /** tests only: debugKill() */
  testHooks?: boolean;
}

type Ready = Extract<FromEdgeNodeWorker, { type: 'ready' }>;

/** The state file of the edge node when the config names none: beside the results database it tails. */
export function mqttStatePath(config: StationConfig['mqtt'], dbPath: string): string {
  return config.statePath ?? join(dirname(dbPath), 'mqtt-edge-node.json');
}

export class MqttEdgeNode extends EventEmitter {
  stats: EdgeNodeStats | null = null;
  /** parts acknowledged by earlier worker generations (stats.partsAcked restarts with each worker) */
  private ackedBefore = 0;
  private lastGeneration = 0;
  private droppedAtStart: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly sw: SupervisedWorker<Ready>, private readonly o: MqttEdgeNodeOptions, readonly edgeNodeId: string) {
    super();
  }

  static async start(o: MqttEdgeNodeOptions): Promise<MqttEdgeNode> {
    const c = o.config;
    const edgeNodeId = c.edgeNodeId ?? o.stationName;
    // read at start: a missing password file is a start-up error, not a silent anonymous connection
    const password = c.passwordFile !== undefined ? readFileSync(c.passwordFile, 'utf8').trim() : undefined;
    const data = (): EdgeNodeWorkerData => ({
      dbPath: o.dbPath, statePath: mqttStatePath(c, o.dbPath), url: c.url, groupId: c.groupId, edgeNodeId, deviceId: c.deviceId,
      ...(c.username !== undefined ? { username: c.username } : {}), ...(password !== undefined ? { password } : {}),
      ...(c.primaryHostId !== undefined ? { primaryHostId: c.primaryHostId } : {}),
      stationName: o.stationName, maxBacklog: c.maxBacklog, batchMaxParts: c.batchMaxParts, maxInFlight: c.maxInFlight,
      pollMs: c.pollMs, statsMs: c.statsMs, notSeenHoldMs: c.notSeenHoldMs, connectTimeoutMs: c.connectTimeoutMs, keepaliveS: c.keepaliveS,
      closeDrainMs: c.closeDrainMs, reconnect: { initialMs: c.reconnect.initialDelayMs, maxMs: c.reconnect.maxDelayMs }, initialState: o.state(),
    });
    const sw = new SupervisedWorker<Ready>({
      name: 'mqtt', url: WORKER_URL, workerData: data, unref: true,
      ready: (m) => ((m as FromEdgeNodeWorker | null)?.type === 'ready' ? m as Ready : undefined),
    });
    const node = new MqttEdgeNode(sw, o, edgeNodeId);
    sw.on('message', (m: FromEdgeNodeWorker, generation: number) => node.onMessage(m, generation));
    relayWorkerEvents(sw, 'mqtt', o.log, (event, payload) => node.emit(event, payload));
    const first = await sw.start();
    o.log.info({ url: c.url, group: c.groupId, edgeNode: edgeNodeId, device: c.deviceId, cursor: first.ackedId, origin: first.origin },
      'MQTT Sparkplug B edge node started');
    node.registerMetrics();
    node.timer = setInterval(() => node.sw.post({ type: 'state', state: o.state() } satisfies ToEdgeNodeWorker), c.statsMs);
    node.timer.unref();
    return node;
  }

  private onMessage(m: FromEdgeNodeWorker, generation: number): void {
    if (m.type === 'log') { this.o.log[m.level](m.data ?? {}, m.msg); return; }
    if (m.type !== 'stats') return;
    if (generation !== this.lastGeneration) {
      this.ackedBefore += this.stats?.partsAcked ?? 0;
      this.lastGeneration = generation;
    }
    const was = this.stats?.connection;
    this.stats = m.stats;
    this.droppedAtStart ??= m.stats.dropped;
    const s = m.stats.connection;
    if (s !== was) {
      if (s === 'down') this.o.onDown(true, `${this.o.config.url}: ${m.stats.lastError ?? 'not connected'}`);
      else if (s === 'online' || s === 'waiting-host') this.o.onDown(false, '');
      this.emit('connection', s);
    }
    this.emit('stats', m.stats);
  }

  /** Parts the broker acknowledged since the station started (all worker generations). */
  get partsAcked(): number { return this.ackedBefore + (this.stats?.partsAcked ?? 0); }

  health(): MqttHealth {
    const s = this.stats;
    const conn = s?.connection ?? 'connecting';
    return {
      // the line does not depend on MQTT: a broker away is 'degraded', never 'down' (results wait in the database)
      state: conn === 'online' ? 'up' : 'degraded',
      connection: conn, url: this.o.config.url, group: this.o.config.groupId, edgeNode: this.edgeNodeId,
      backlog: s?.backlog ?? 0, dropped: s?.dropped ?? 0, partsAcked: this.partsAcked, bdSeq: s?.bdSeq ?? 0, lastError: s?.lastError ?? null,
    };
  }

  private registerMetrics(): void {
    const r = [this.o.registry];
    const self = this;
    new client.Counter({ name: 'inspector_mqtt_dropped_total', help: 'Results skipped (never published) because the MQTT backlog was over mqtt.maxBacklog',
      registers: r, collect() { this.reset(); this.inc(Math.max(0, (self.stats?.dropped ?? 0) - (self.droppedAtStart ?? 0))); } });
    new client.Counter({ name: 'inspector_mqtt_parts_published_total', help: 'Results published in DDATA and acknowledged by the broker (QoS 1)',
      registers: r, collect() { this.reset(); this.inc(self.partsAcked); } });
    new client.Gauge({ name: 'inspector_mqtt_backlog', help: 'Results stored and not yet acknowledged by the MQTT broker',
      registers: r, collect() { this.set(self.stats?.backlog ?? 0); } });
    new client.Gauge({ name: 'inspector_mqtt_connected', help: '1 while the edge node is born on the broker (NBIRTH sent), else 0',
      registers: r, collect() { this.set(self.stats?.connection === 'online' ? 1 : 0); } });
  }

  /** Tests only (testHooks): end the worker for real, as a crash would (the broker sends its will: NDEATH). */
  async debugKill(): Promise<void> {
    if (!this.o.testHooks) throw new Error('debugKill() needs testHooks');
    await this.sw.worker?.terminate();
  }

  /** NDEATH and disconnect after the last acknowledgements (bounded by closeDrainMs), then stop the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.sw.state === 'ready') {
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(t); this.sw.off('message', onMsg); this.sw.off('death', done); resolve(); };
        const onMsg = (m: FromEdgeNodeWorker): void => { if (m?.type === 'closed') done(); };
        const t = setTimeout(done, this.o.config.closeDrainMs + 5000);
        this.sw.on('message', onMsg);
        this.sw.on('death', done);
        this.sw.post({ type: 'close' } satisfies ToEdgeNodeWorker);
      });
    }
    await this.sw.close();
  }
}
