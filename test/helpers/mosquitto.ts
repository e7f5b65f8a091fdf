/**
 * A real MQTT broker for tests: Debian's mosquitto (2.0), started as this test's own child process on a loopback
 * port with a config file (2.0 refuses anonymous clients and listens on localhost only without one), killed and
 * restarted on the same port by its pid. And a Sparkplug B primary host application: a real mqtt.js subscriber that
 * decodes every message with sparkplug-payload and keeps them in arrival order (SparkplugHost), plus the checks a
 * consumer makes to prove nothing was lost or duplicated (sparkplugStream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../../inspector/core/free-port.js';
import * as sp from '../../inspector/mqtt/sparkplug.js';
import { sleep } from './wait.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export class Mosquitto {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private constructor(readonly port: number, private readonly dir: string) {}

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }

  /** A broker on `port` (default: a free one), accepting connections when this resolves. */
  static async start(port?: number): Promise<Mosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'mosquitto-'));
    const m = new Mosquitto(port ?? await freePort(), dir);
    await m.run();
    return m;
  }

  /** Start (again) on the same port. */
  async run(timeoutMs = 20_000): Promise<void> {
    if (this.proc) throw new Error('mosquitto is running already');
    const conf = join(this.dir, 'mosquitto.conf');
    // max_inflight_messages 0: the broker writes each message to the subscriber before it acknowledges the
    // publisher (no queue inside the broker that a kill would lose)
    writeFileSync(conf, [`listener ${this.port} 127.0.0.1`, 'allow_anonymous true', 'persistence false',
      'max_inflight_messages 0', 'max_queued_messages 0', 'log_dest stderr', 'log_type error', 'log_type warning', ''].join('\n'));
    const p = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    this.proc = p;
    this.exited = new Promise((resolve) => p.once('exit', () => { this.proc = null; resolve(); }));
    const end = Date.now() + timeoutMs;
    while (!(await portOpen(this.port))) {
      if (this.proc === null) throw new Error(`mosquitto exited at start: ${stderr}`);
      if (Date.now() > end) throw new Error(`mosquitto not listening on ${this.port} after ${timeoutMs} ms: ${stderr}`);
      await sleep(25);
    }
  }

  get running(): boolean { return this.proc !== null; }

  /** SIGKILL (a crash: no will is sent, nothing is flushed), then wait for the exit. */
  async kill(): Promise<void> {
    this.proc?.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    this.proc?.kill('SIGTERM');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SparkplugMessage {
  topic: string; verb: string; group: string; node: string; device: string | null; payload: ReturnType<typeof sp.decode>;
  /** the connection of the host it arrived on (1, 2, … after a broker restart) */
  hostSession: number;
}

/**
 * A Sparkplug 3.0 primary host application: subscribes to the group, then says STATE online (retained; its will
 * says offline), again after every reconnect, so an edge node configured with this host id births only once the
 * host listens.
 */
export class SparkplugHost {
  readonly messages: SparkplugMessage[] = [];
  private session = 0;
  private constructor(private readonly client: MqttClient, readonly hostId: string) {}

  static async start(url: string, hostId: string, group: string): Promise<SparkplugHost> {
    const stateTopic = sp.stateTopic(hostId);
    const offline = (): string => JSON.stringify({ online: false, timestamp: Date.now() });
    const client = mqtt.connect(url, { clientId: `host-${hostId}`, clean: true, reconnectPeriod: 200, resubscribe: false, connectTimeout: 5000,
      will: { topic: stateTopic, payload: Buffer.from(offline()), qos: 1, retain: true } });
    const host = new SparkplugHost(client, hostId);
    client.on('message', (topic, payload) => {
      const [, g, verb, node, device] = topic.split('/');
      if (g === 'STATE' || !verb || !node) return;
      host.messages.push({ topic, verb, group: g!, node, device: device ?? null, payload: sp.decode(payload), hostSession: host.session });
    });
    let first: (() => void) | null = null;
    const ready = new Promise<void>((r) => { first = r; });
    client.on('connect', () => {
      host.session++;
      // subscribe first, then say online: nothing an edge node publishes for us can come before our subscription
      void client.subscribeAsync(`spBv1.0/${group}/#`, { qos: 1 })
        .then(() => client.publishAsync(stateTopic, JSON.stringify({ online: true, timestamp: Date.now() }), { qos: 1, retain: true }))
        .then(() => { first?.(); first = null; }, () => undefined);
    });
    await ready;
    return host;
  }

  get connected(): boolean { return this.client.connected; }

  /** Ask an edge node to rebirth (NCMD Node Control/Rebirth). */
  async rebirth(group: string, node: string): Promise<void> {
    const payload = Buffer.from(sp.encodeCommand({ rebirth: true }));
    await this.client.publishAsync(sp.nodeTopic(group, 'NCMD', node), payload, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export interface StreamCheck {
  /** parts in index order, each once (redeliveries removed) */
  parts: sp.PartResult[];
  /** parts delivered again (index <= the last seen): the QoS 1 redelivery case; with the birth they came in */
  redeliveries: Array<{ index: number; afterBirth: number }>;
  /** index gaps not explained by Results/Dropped */
  unexplainedGaps: Array<{ from: number; to: number }>;
  /** the bdSeq of each NBIRTH, in order */
  births: number[];
  /** the bdSeq of each NDEATH, in order */
  deaths: number[];
  /** seq numbers out of order within a birth */
  seqErrors: string[];
  /** the last Results/Dropped seen */
  dropped: number;
  /** DDATA messages since the last NBIRTH, per birth */
  ddataPerBirth: number[];
}

/** What a Sparkplug consumer checks on one edge node's messages (arrival order). */
export function sparkplugStream(messages: readonly SparkplugMessage[], node: string): StreamCheck {
  const out: StreamCheck = { parts: [], redeliveries: [], unexplainedGaps: [], births: [], deaths: [], seqErrors: [], dropped: 0, ddataPerBirth: [] };
  let expected: number | null = null;
  let last = -1;
  let droppedAtLast = -1;
  // NCMD/DCMD come from host applications (this one's own rebirth request too), not from the node
  for (const m of messages.filter((x) => x.node === node && x.verb !== 'NCMD' && x.verb !== 'DCMD')) {
    const p = m.payload;
    const metric = (name: string): unknown => (p.metrics ?? []).find((x) => x.name === name)?.value;
    if (m.verb === 'NDEATH') { out.deaths.push(sp.toNumber(metric(sp.M.bdSeq))); expected = null; continue; }
    const seq = sp.toNumber(p.seq);
    if (m.verb === 'NBIRTH') {
      out.births.push(sp.toNumber(metric(sp.M.bdSeq)));
      out.ddataPerBirth.push(0);
      if (seq !== 0) out.seqErrors.push(`NBIRTH with seq ${seq}`);
      expected = 1;
      continue;
    }
    if (expected === null) { out.seqErrors.push(`${m.verb} seq ${seq} outside a birth`); continue; }
    if (seq !== expected) out.seqErrors.push(`${m.verb} seq ${seq}, expected ${expected} (birth ${out.births.length})`);
    expected = (seq + 1) % 256;
    if (m.verb !== 'DDATA' && m.verb !== 'DBIRTH') continue;
    const dropped = sp.toNumber(metric(sp.M.dropped));
    if (m.verb === 'DBIRTH') { out.dropped = dropped; continue; }
    out.ddataPerBirth[out.ddataPerBirth.length - 1]!++;
    for (const part of sp.decodeResults(p)) {
      if (part.index <= last) { out.redeliveries.push({ index: part.index, afterBirth: out.births.length }); continue; }
      // a gap must be explained by rows skipped over maxBacklog (Results/Dropped grew by as much)
      if (last >= 0 && part.index !== last + 1 && part.index - last - 1 !== dropped - droppedAtLast) {
        out.unexplainedGaps.push({ from: last, to: part.index });
      }
      out.parts.push(part);
      last = part.index;
      droppedAtLast = dropped;
    }
    out.dropped = dropped;
  }
  return out;
}
