/**
 * PlcLink: the station's OPC UA client to the PLC.
 *
 * One WriteRequest per part (Pass, Code, Score, Epoch, PartId: the strobe last,
 * see plc-contract.ts) plus a UInt32 heartbeat counter every `heartbeatMs`.
 *
 * Resynchronisation: on every (re)connect, before the link is called
 * 'connected', it reads the PLC's Line.Epoch and Line.LastPartId and emits
 * 'sync' ({ epoch, lastPartId, previousEpoch }). The part loop then refuses to
 * send results of any other epoch (a PLC that restarted has renumbered its parts).
 * `readStatus()` reads the PLC's counters and outcome log (station/plc-outcomes.ts).
 *
 * Never stalls the caller:
 *  - `writeResult` rejects at once with PlcWriteError (INSPECTOR_PLC_WRITE)
 *    while the link is not 'connected'. It never queues behind a reconnect
 *    (node-opcua's own reconnection DOES queue requests: we do not use it).
 *  - a write that gets no answer within `writeTimeoutMs` rejects, and the link
 *    is recycled (node-opcua's own request timeout cannot go below 5 s).
 *
 * Reconnection is our own loop: every attempt is a fresh client and session
 * (plc-connection.ts `openSession`, which says why). Delays double from
 * `initialDelayMs` up to `maxDelayMs`, with ±20 % jitter.
 *
 * Security (plc-security.ts): `security: { mode, policy }` ('auto' by default:
 * the most secure endpoint the PLC offers, never None unless mode is 'None'),
 * `user` (anonymous, user name + password or file, X.509). The station's
 * application certificate lives in `certificateFolder` (made at the first
 * start, kept); the PLC's certificate must be trusted there explicitly. A
 * refusal is a PlcSecurityError (INSPECTOR_PLC_SECURITY): `lastError` /
 * `lastErrorCode` say why, and the link keeps retrying (a certificate trusted
 * with `inspector pki trust` is used by the next attempt).
 *
 * Ready (the interlock bit a PLC holds the line on): `setReady(true)` once the
 * station can judge parts, `setReady(false)` before it stops. The value is
 * written at once, at every (re)connect and with every heartbeat (one request:
 * Heartbeat, Ready), so a PLC that restarted, or a station restarted after a
 * crash, never leaves a stale Ready behind for long. A PLC without the tag
 * answers a bad status for it: logged once (readyErrors), the link stays up.
 *
 * Where: plc-link-lifecycle.ts (start, connect, resync, retry, link down, stop),
 * plc-link-heartbeat.ts (heartbeat and Station.Ready), this file (the result
 * writes and readStatus); plc-connection.ts is one connection attempt.
 */
import type { StatusCode } from 'node-opcua';
import { PlcWriteError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  OUTCOME_LOG_TAG, defaultPlcCounterNodeIds, plcTags, stringNodeId, type PlcCounters, type PlcNodeIds, type PlcTagKey,
} from './plc-contract.js';
import { firstBad, readPlcStatus, withTimeout, type ResultWriteValues } from './plc-connection.js';
import { PlcLinkHeartbeat } from './plc-link-heartbeat.js';
import type { PlcSecurityConfig, PlcUserConfig } from './plc-security.js';

export { quietNodeOpcua } from './plc-connection.js';

export type PlcLinkState = 'connecting' | 'connected' | 'disconnected';

export interface PlcLinkOptions {
  endpoint: string;
  nodeIds: PlcNodeIds;
  /** heartbeat write period, ms (default 500) */
  heartbeatMs?: number;
  /** own PKI folder for this client; default: a temp folder removed by stop() */
  certificateFolder?: string;
  reconnect?: { initialDelayMs: number; maxDelayMs: number };
  /** a write with no answer after this long rejects and recycles the link (default 1000) */
  writeTimeoutMs?: number;
  /** one connect + create-session attempt gives up after this long (default 3000) */
  connectTimeoutMs?: number;
  logger?: Logger;
  /** OPC UA security (default { mode: 'auto', policy: 'auto' }: the most secure endpoint offered; never None unless asked) */
  security?: PlcSecurityConfig;
  /** the user towards the PLC (default 'anonymous'); files are read at start() */
  user?: PlcUserConfig;
}

export interface PlcLinkCounters {
  /** result writes acknowledged Good */
  writes: number;
  /** result writes rejected (link down, bad status, timeout, transport error) */
  writeErrors: number;
  /** successful connections after the first one */
  reconnects: number;
  /** heartbeat writes acknowledged Good */
  heartbeats: number;
}

interface InFlight { t0: number; settle: (err: Error | null) => void }

/** What readStatus() returns: the PLC's counters and its newest outcomes ([PartId, code] pairs). */
export interface PlcStatus { counters: Omit<PlcCounters, 'StationAlive'> & { StationAlive: boolean }; log: Uint32Array }

const STATUS_KEYS = Object.keys(plcTags) as PlcTagKey[];
const STATUS_NODE_IDS = [...STATUS_KEYS.map((k) => defaultPlcCounterNodeIds[k]), stringNodeId(OUTCOME_LOG_TAG.id)];

/** One WriteRequest per part, its answer or timeout, and the read of the PLC's status. */
export class PlcLink extends PlcLinkHeartbeat {
  private readonly inFlight = new Set<InFlight>();
  /** the result request body (see buildWriteValues) */
  private readonly resultValues: ResultWriteValues;

  constructor(opts: PlcLinkOptions) {
    super(opts);
    this.resultValues = this.values.result;
  }

  /**
   * One WriteRequest: Pass, Code, Score, PartId (strobe last). Resolves with the
   * round-trip in ms; rejects with PlcWriteError at once if the link is down.
   */
  writeResult(partId: number, epoch: number, pass: boolean, code: number, score: number): Promise<number> {
    const session = this.session;
    if (this.state !== 'connected' || session === null) {
      this.counters.writeErrors++;
      return Promise.reject(new PlcWriteError(`link ${this.state}`));
    }
    if (!(partId >= 0 && partId <= 0xffffffff && Number.isInteger(partId))
      || !(code >= 0 && code <= 0xffff && Number.isInteger(code))
      || !(epoch >= 0 && epoch <= 0xffffffff && Number.isInteger(epoch))) {
      this.counters.writeErrors++;
      return Promise.reject(new PlcWriteError(`invalid result partId=${partId} epoch=${epoch} code=${code}`));
    }
    const v = this.resultValues;
    v[0].value.value.value = pass === true;
    v[1].value.value.value = code;
    v[2].value.value.value = score;
    v[3].value.value.value = epoch;
    v[4].value.value.value = partId;
    const gen = this.generation;
    return new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const entry: InFlight = {
        t0,
        settle: (err) => {
          if (!this.inFlight.delete(entry)) return; // already settled (timeout / link down)
          if (err) { this.counters.writeErrors++; reject(err); return; }
          this.counters.writes++;
          resolve(performance.now() - t0);
        },
      };
      this.inFlight.add(entry);
      try {
        session.write(v, (err: Error | null, results?: StatusCode[]) => {
          const bad = err ? null : firstBad(results, 5);
          if (err) {
            entry.settle(new PlcWriteError(err.message));
            this.onRequestError(gen, err.message);
          } else if (bad) {
            entry.settle(new PlcWriteError(`partId ${partId}: ${bad}`));
            this.onRequestError(gen, bad);
          } else {
            entry.settle(null);
          }
        });
      } catch (err) { // encoding errors are thrown synchronously
        entry.settle(new PlcWriteError((err as Error).message));
      }
    });
  }

  /**
   * The PLC's counters, line state and newest outcomes in ONE ReadRequest (so the
   * log and its count agree). Off the hot path: the station calls it a few times
   * a second from plc-outcomes.ts. Rejects while the link is down.
   */
  async readStatus(): Promise<PlcStatus> {
    const session = this.session;
    if (this.state !== 'connected' || !session) throw new PlcWriteError(`link ${this.state}`);
    const values = await withTimeout(readPlcStatus(session, STATUS_NODE_IDS), this.writeTimeoutMs);
    const counters = {} as Record<string, unknown>;
    STATUS_KEYS.forEach((k, i) => { counters[k] = values[i]; });
    const raw = values[STATUS_KEYS.length];
    const log = raw instanceof Uint32Array ? raw : Uint32Array.from((raw as ArrayLike<number> | null) ?? []);
    return { counters: counters as unknown as PlcStatus['counters'], log };
  }

  protected override failInFlight(reason: string): void {
    for (const e of [...this.inFlight]) e.settle(new PlcWriteError(reason));
  }

  /** Reject writes older than writeTimeoutMs; a PLC that does not answer is a broken link. */
  protected override sweepTimeouts(): void {
    const now = performance.now();
    let timedOut = false;
    for (const e of this.inFlight) { // insertion order: oldest first
      if (now - e.t0 < this.writeTimeoutMs) break;
      e.settle(new PlcWriteError(`no answer within ${this.writeTimeoutMs} ms`));
      timedOut = true;
    }
    if (timedOut) this.linkDown(this.generation, 'write timed out');
  }
}
