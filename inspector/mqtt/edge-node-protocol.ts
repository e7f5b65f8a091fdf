/**
 * Messages between the station's main thread (mqtt/edge-node.ts) and the edge-node worker (mqtt/edge-node-worker.ts).
 * Types only: importing this module starts nothing.
 */
import type { StationState } from './sparkplug.js';

export interface EdgeNodeWorkerData {
  dbPath: string;
  statePath: string;
  url: string;
  username?: string;
  password?: string;
  groupId: string;
  edgeNodeId: string;
  deviceId: string;
  /** Sparkplug 3.0 primary host application id: birth only while its STATE is online */
  primaryHostId?: string;
  stationName: string;
  maxBacklog: number;
  batchMaxParts: number;
  maxInFlight: number;
  pollMs: number;
  statsMs: number;
  notSeenHoldMs: number;
  connectTimeoutMs: number;
  keepaliveS: number;
  closeDrainMs: number;
  reconnect: { initialMs: number; maxMs: number };
  initialState: StationState;
}

/** The worker's view of its connection: 'down' is a lost or refused connection (MQTT_DOWN). */
export type MqttConnection = 'connecting' | 'waiting-host' | 'online' | 'down' | 'closed';

export interface EdgeNodeStats {
  connection: MqttConnection;
  /** the bdSeq of the current (or last) connection */
  bdSeq: number;
  births: number;
  connects: number;
  /** parts acknowledged by the broker (this worker's life) */
  partsAcked: number;
  /** MQTT messages published (this worker's life) */
  messages: number;
  /** results skipped over maxBacklog, cumulative since the edge node was first enabled (persisted) */
  dropped: number;
  /** results stored and not acknowledged yet */
  backlog: number;
  /** the persisted cursor: the highest result index acknowledged (or skipped) */
  ackedId: number;
  lastError: string | null;
}

export type ToEdgeNodeWorker =
  | { type: 'state'; state: StationState }
  | { type: 'close' };

export type FromEdgeNodeWorker =
  | { type: 'ready'; origin: 'file' | 'new' | 'reset'; ackedId: number }
  | { type: 'stats'; stats: EdgeNodeStats }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> }
  | { type: 'closed' };
