/**
 * The Sparkplug B edge node, in its own worker thread (supervised by MqttEdgeNode, mqtt/edge-node.ts): nothing here
 * can delay the part loop. It tails the results database (results-tail.ts) and publishes each stored part in a DDATA
 * Results DataSet, in rowid order, QoS 1; the cursor moves (and is persisted) only over what the broker acknowledged.
 *
 * One MQTT connection = one Sparkplug session: a fresh mqtt.js client per connection (its own automatic reconnect is
 * off) so that the will carries that session's bdSeq and no message of an old session is resent by the library with
 * an old seq; after a connection is lost, publishing resumes from the acknowledged cursor in a new birth.
 *
 * With `primaryHostId` set (Sparkplug 3.0 primary host), the node births only while that host's STATE says online
 * and leaves (NDEATH, disconnect) when it goes offline: the host is subscribed before any result is published to it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import { ResultsTail } from './results-tail.js';
import * as sp from './sparkplug.js';
import type { EdgeNodeStats, EdgeNodeWorkerData, FromEdgeNodeWorker, ToEdgeNodeWorker } from './edge-node-protocol.js';

const data = workerData as EdgeNodeWorkerData;
const port = parentPort!;
const post = (m: FromEdgeNodeWorker): void => port.postMessage(m);
const log = (level: 'info' | 'warn' | 'error', msg: string, d?: Record<string, unknown>): void => post({ type: 'log', level, msg, ...(d ? { data: d } : {}) });

const tail = new ResultsTail({ dbPath: data.dbPath, statePath: data.statePath, maxBacklog: data.maxBacklog, notSeenHoldMs: data.notSeenHoldMs });
const { groupId: group, edgeNodeId: node, deviceId: device } = data;
const T = {
  nbirth: sp.nodeTopic(group, 'NBIRTH', node), ndata: sp.nodeTopic(group, 'NDATA', node), ndeath: sp.nodeTopic(group, 'NDEATH', node),
  ncmd: sp.nodeTopic(group, 'NCMD', node), dbirth: sp.deviceTopic(group, 'DBIRTH', node, device), ddata: sp.deviceTopic(group, 'DDATA', node, device),
};

/** A published message not yet acknowledged (or a skip, done at once): the cursor moves over a done prefix. */
interface Flight { lastId: number; done: boolean; dropped: number }

let station: sp.StationState = data.initialState;
let published: sp.StationState | null = null;
let client: MqttClient | null = null;
let session = 0; // +1 per connection: callbacks of an old client are ignored
let born = false;
let seq = 0;
let sentId = tail.state.ackedId;
let droppedSent = tail.state.dropped; // cumulative, skips not yet passed by the cursor included
let flights: Flight[] = [];
let hostOnlineAt = -1;
let closing = false;
let reconnectTimer: NodeJS.Timeout | null = null;
let failures = 0;
const stats: EdgeNodeStats = {
  connection: 'connecting', bdSeq: tail.state.bdSeq, births: 0, connects: 0, partsAcked: 0, messages: 0,
  dropped: tail.state.dropped, backlog: 0, ackedId: tail.state.ackedId, lastError: null,
};

function nextSeq(): number {
  const s = seq;
  seq = (seq + 1) % 256;
  return s;
}

function publish(topic: string, payload: Buffer, onAck?: () => void): void {
  const mine = session;
  stats.messages++;
  client!.publish(topic, payload, { qos: 1, retain: false }, (err) => {
    if (err || mine !== session) return; // a lost connection: the next session resends from the acknowledged cursor
    onAck?.();
  });
}

function connect(): void {
  reconnectTimer = null;
  if (closing) return;
  const mine = ++session;
  const bdSeq = (tail.state.bdSeq + 1) % 256;
  tail.setBdSeq(bdSeq);
  stats.bdSeq = bdSeq;
  if (stats.connection !== 'down') stats.connection = 'connecting'; // a retry stays 'down' until it connects
  born = false;
  hostOnlineAt = -1;
  // a new session resends everything the broker did not acknowledge, in order
  sentId = tail.state.ackedId;
  droppedSent = tail.state.dropped;
  flights = [];
  const c = mqtt.connect(data.url, {
    clientId: `${group}:${node}`, clean: true, reconnectPeriod: 0, connectTimeout: data.connectTimeoutMs, keepalive: data.keepaliveS,
    will: { topic: T.ndeath, payload: sp.ndeath(bdSeq, Date.now()), qos: 1, retain: false },
    ...(data.username !== undefined ? { username: data.username } : {}), ...(data.password !== undefined ? { password: data.password } : {}),
  });
  client = c;
  c.on('connect', () => {
    if (mine !== session) return;
    failures = 0;
    stats.connects++;
    stats.lastError = null;
    const topics = [T.ncmd, ...(data.primaryHostId ? [sp.stateTopic(data.primaryHostId)] : [])];
    c.subscribe(topics, { qos: 1 }, (err) => {
      if (mine !== session) return;
      if (err) { drop(`subscribe failed: ${err.message}`); return; }
      if (!data.primaryHostId) birth();
      else if (!born) stats.connection = 'waiting-host'; // the retained STATE may have come (and birthed) before the SUBACK
    });
  });
  c.on('message', (topic, payload) => { if (mine === session) onMessage(topic, payload); });
  c.on('error', (err) => { if (mine === session) stats.lastError = err.message; });
  c.on('close', () => { if (mine === session) drop(stats.lastError ?? 'connection closed'); });
}

/** The connection is gone (or given up): forget the session; connect again with backoff. */
function drop(why: string): void {
  const c = client;
  client = null;
  session++;
  born = false;
  c?.end(true);
  if (closing) return;
  if (stats.connection !== 'down') log('warn', 'MQTT broker connection lost; results wait in the results database', { why, backlog: tail.backlog(tail.state.ackedId) });
  stats.connection = 'down';
  stats.lastError = why;
  report();
  const delay = Math.min(data.reconnect.maxMs, data.reconnect.initialMs * 2 ** Math.min(failures++, 16));
  reconnectTimer = setTimeout(connect, delay);
}

function onMessage(topic: string, payload: Buffer): void {
  if (topic === T.ncmd) {
    let p;
    try { p = sp.decode(payload); } catch (err) { log('warn', 'undecodable NCMD ignored', { err: (err as Error).message }); return; }
    if (sp.isRebirthCommand(p) && born) { log('info', 'rebirth requested (NCMD)'); birth(); }
    return;
  }
  if (data.primaryHostId && topic === sp.stateTopic(data.primaryHostId)) {
    let s: { online?: unknown; timestamp?: unknown };
    try { s = JSON.parse(payload.toString('utf8')) as typeof s; } catch { log('warn', 'undecodable STATE ignored'); return; }
    const at = typeof s.timestamp === 'number' ? s.timestamp : 0;
    if (at < hostOnlineAt) return; // an older STATE than the one acted on
    if (s.online === true) {
      hostOnlineAt = at;
      if (!born) birth();
    } else if (born) {
      // Sparkplug 3.0: the primary host went offline: die (NDEATH) and connect again, to birth when it is back
      log('warn', 'primary host offline: NDEATH and reconnect', { host: data.primaryHostId });
      publish(T.ndeath, sp.ndeath(tail.state.bdSeq, Date.now()));
      const c = client;
      client = null;
      session++;
      born = false;
      c?.end(false, () => { if (!closing) reconnectTimer = setTimeout(connect, data.reconnect.initialMs); });
      stats.connection = 'waiting-host';
    }
  }
}

/** NBIRTH (seq 0) then DBIRTH: everything a consumer needs to interpret what follows. */
function birth(): void {
  seq = 0;
  const now = Date.now();
  publish(T.nbirth, sp.nbirth({ bdSeq: tail.state.bdSeq, seq: nextSeq(), station: data.stationName, state: station, now }));
  publish(T.dbirth, sp.dbirth({ seq: nextSeq(), dropped: droppedSent, now }));
  published = { ...station, alarms: [...station.alarms] };
  born = true;
  stats.births++;
  stats.connection = 'online';
  log('info', 'Sparkplug birth', { bdSeq: tail.state.bdSeq, fromIndex: sentId + 1 });
  report(); // connection changes reach the main thread (health, MQTT_DOWN) at once, not at the next tick
  pump();
}

/** Publish what waits, in order, keeping at most maxInFlight unacknowledged messages. */
function pump(): void {
  if (!born || client === null) return;
  if (published && changed(published, station)) {
    publish(T.ndata, sp.ndata({ seq: nextSeq(), state: station, now: Date.now() }));
    published = { ...station, alarms: [...station.alarms] };
  }
  while (flights.length < data.maxInFlight) {
    const over = tail.overBound(sentId);
    if (over > 0) {
      // the bound: skip the oldest rows not sent; they count as dropped once the cursor passes them
      sentId += over;
      droppedSent += over;
      flights.push({ lastId: sentId, done: true, dropped: over });
      log('warn', 'MQTT backlog over maxBacklog: oldest results skipped', { skipped: over, maxBacklog: data.maxBacklog });
      settle();
    }
    const parts = tail.next(sentId, data.batchMaxParts);
    if (parts.length === 0) break;
    const f: Flight = { lastId: parts.at(-1)!.index, done: false, dropped: 0 };
    flights.push(f);
    sentId = f.lastId;
    publish(T.ddata, sp.ddata({ seq: nextSeq(), parts, dropped: droppedSent, now: Date.now() }), () => {
      f.done = true;
      stats.partsAcked += parts.length;
      settle();
      pump();
    });
  }
}

/** Move the persisted cursor over the acknowledged (or skipped) prefix. */
function settle(): void {
  let id = -1;
  let dropped = 0;
  while (flights.length > 0 && flights[0]!.done) {
    const f = flights.shift()!;
    id = f.lastId;
    dropped += f.dropped;
  }
  if (id >= 0) tail.ack(id, dropped);
}

/** While no broker is there, the bound still applies (counted at once: the cursor is the sent position then). */
function boundWhileDown(): void {
  if (born) return;
  const over = tail.overBound(tail.state.ackedId);
  if (over > 0) {
    tail.ack(tail.state.ackedId + over, over);
    log('warn', 'MQTT backlog over maxBacklog while the broker is away: oldest results skipped', { skipped: over, maxBacklog: data.maxBacklog });
  }
}

function changed(a: sp.StationState, b: sp.StationState): boolean {
  return a.modelName !== b.modelName || a.modelVersion !== b.modelVersion || a.parts !== b.parts || a.notInspected !== b.notInspected
    || a.plcWrites !== b.plcWrites || a.plcWriteErrors !== b.plcWriteErrors || a.alarms.join('\n') !== b.alarms.join('\n');
}

function report(): void {
  stats.dropped = tail.state.dropped;
  stats.ackedId = tail.state.ackedId;
  stats.backlog = tail.backlog(tail.state.ackedId);
  post({ type: 'stats', stats: { ...stats } });
}

const poll = setInterval(() => {
  try {
    boundWhileDown();
    pump();
  } catch (err) {
    log('error', 'MQTT edge node: reading the results database failed', { err: (err as Error).message });
  }
}, data.pollMs);
const reporter = setInterval(report, data.statsMs);

async function close(): Promise<void> {
  closing = true;
  clearInterval(poll);
  clearInterval(reporter);
  if (reconnectTimer) clearTimeout(reconnectTimer);
  const c = client;
  if (c && c.connected) {
    // the rows the store committed last (the station stops it first) are published and acknowledged, bounded
    const until = Date.now() + data.closeDrainMs;
    while (born && client === c && (tail.backlog(sentId) > 0 || flights.some((f) => !f.done)) && Date.now() < until) {
      try { pump(); } catch { break; }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (client === c) {
      // an intentional disconnect sends no will: say NDEATH ourselves (Sparkplug)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        c.publish(T.ndeath, sp.ndeath(tail.state.bdSeq, Date.now()), { qos: 1 }, () => { clearTimeout(t); resolve(); });
      });
    }
    session++;
    await Promise.race([c.endAsync(), new Promise((r) => setTimeout(r, 2000))]);
  } else {
    session++;
    c?.end(true);
  }
  stats.connection = 'closed';
  report();
  tail.close();
  post({ type: 'closed' });
  port.close();
}

port.on('message', (m: ToEdgeNodeWorker) => {
  if (m.type === 'state') { station = m.state; if (born) pump(); } else if (m.type === 'close') void close();
});

post({ type: 'ready', origin: tail.origin, ackedId: tail.state.ackedId });
report();
connect();
