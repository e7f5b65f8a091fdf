/**
 * The liveness half of PlcLink (plc-link.ts): the UInt32 heartbeat counter written
 * every `heartbeatMs`, and Station.Ready, the interlock bit a PLC holds the line on
 * (written alone by setReady and at every connect, and with every heartbeat).
 *
 * Separate from the result writes because it is a different contract with the PLC:
 * a heartbeat that gets no answer drops the link (plc-link-lifecycle.ts), while a
 * refused Ready only says the PLC lacks the tag (readyErrors) and the link stays up.
 */
import {
  AttributeIds, DataType, DataValue, StatusCodes, Variant, WriteValue, coerceNodeId,
  type ClientSession, type StatusCode,
} from 'node-opcua';
import { PlcWriteError } from '../core/errors.js';
import { firstBad, withTimeout, type PlcWriteValues } from './plc-connection.js';
import { PlcLinkLifecycle } from './plc-link-lifecycle.js';
import type { PlcLinkOptions } from './plc-link.js';

export abstract class PlcLinkHeartbeat extends PlcLinkLifecycle {
  /** the Station.Ready value the station wants the PLC to see (setReady) */
  ready = false;
  /** Ready writes the PLC answered with a bad status (a PLC without the tag) */
  readyErrors = 0;

  private heartbeatValue = 0;
  private heartbeatInFlight = false;
  private readonly heartbeatValues: PlcWriteValues['heartbeat'];
  /** Station.Ready, alone (setReady, connect) and after the heartbeat counter in every beat */
  private readonly readyValues: [WriteValue];
  private readonly beatValues: WriteValue[];

  constructor(opts: PlcLinkOptions) {
    super(opts);
    this.heartbeatValues = this.values.heartbeat;
    let readyNode;
    try { readyNode = coerceNodeId(opts.nodeIds.ready); } catch (err) {
      throw new PlcWriteError(`plc.nodeIds.ready "${opts.nodeIds.ready}": ${(err as Error).message}`);
    }
    this.readyValues = [new WriteValue({ nodeId: readyNode, attributeId: AttributeIds.Value,
      value: new DataValue({ value: new Variant({ dataType: DataType.Boolean, value: false }) }) })];
    this.beatValues = [...this.heartbeatValues, this.readyValues[0]];
  }

  /**
   * Tell the PLC whether the station can judge parts now. Resolves once the PLC has it (or at
   * once while the link is down: the value goes out at the next connect and every heartbeat).
   */
  async setReady(ready: boolean): Promise<void> {
    const changed = this.ready !== ready;
    this.ready = ready;
    if (changed) this.log.info({ ready }, ready ? 'Station.Ready set: the PLC may run the line' : 'Station.Ready cleared: the PLC holds the line');
    const session = this.session;
    if (this.state !== 'connected' || !session) return;
    await this.writeReady(session);
  }

  protected override async writeReady(session: ClientSession): Promise<void> {
    this.readyValues[0].value.value.value = this.ready;
    try {
      const results = await withTimeout(session.write(this.readyValues), this.writeTimeoutMs);
      const r = results[0];
      if (r && r.value !== StatusCodes.Good.value) this.noteReadyError(r.toString());
    } catch (err) {
      this.log.warn({ err: (err as Error).message, ready: this.ready }, 'Station.Ready write failed (sent again with the next heartbeat)');
    }
  }

  private noteReadyError(status: string): void {
    if (this.readyErrors++ === 0) this.log.warn({ status }, 'the PLC refused Station.Ready (no such tag?): it cannot interlock on the station');
  }

  protected override beat(): void {
    const session = this.session;
    if (this.state !== 'connected' || !session || this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    this.heartbeatValue = (this.heartbeatValue + 1) >>> 0;
    this.heartbeatValues[0].value.value.value = this.heartbeatValue;
    this.readyValues[0].value.value.value = this.ready;
    const gen = this.generation;
    const t0 = performance.now();
    const timer = setTimeout(() => this.linkDown(gen, 'heartbeat timed out'), this.writeTimeoutMs);
    session.write(this.beatValues, (err: Error | null, results?: StatusCode[]) => {
      clearTimeout(timer);
      if (gen !== this.generation) return;
      this.heartbeatInFlight = false;
      // the heartbeat decides the link; a refused Ready is the PLC's missing tag, not a broken link
      const readyStatus = results?.[1];
      if (readyStatus && readyStatus.value !== StatusCodes.Good.value) this.noteReadyError(readyStatus.toString());
      const bad = err ? err.message : firstBad(results?.slice(0, 1), 1);
      if (bad) {
        this.log.warn({ err: bad }, 'heartbeat write failed');
        this.onRequestError(gen, bad);
        return;
      }
      this.counters.heartbeats++;
      const ms = performance.now() - t0;
      if (ms > this.heartbeatMs) this.log.warn({ ms }, 'slow heartbeat write');
    });
  }

  protected override clearHeartbeatInFlight(): void {
    this.heartbeatInFlight = false;
  }
}
