/**
 * What the PLC link tests (test/plc-results.test.ts, test/plc-link-lifecycle.test.ts) share:
 * the gate window they run the simulator with, polling at 10 ms, the change of the PLC's
 * counters between two reads, and a plain OPC UA client.
 */
import {
  MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, type ClientSession,
} from 'node-opcua';
import type { PlcCounters } from '../../inspector/plc/plc-contract.js';
import { until as untilEvery } from './wait.js';

export const GATE_MS = 150; // default is 100; a little slack for a loaded 2-core CI box

/** Poll a condition every 10 ms (parts are timed against GATE_MS); the error names what was awaited. */
export const until = (cond: () => boolean, timeoutMs: number, what: string): Promise<void> => untilEvery(cond, timeoutMs, what, 10);

type NumericCounter = Exclude<keyof PlcCounters, 'StationAlive' | 'StationReady'>;
export function delta(a: PlcCounters, b: PlcCounters): Record<NumericCounter, number> {
  const d = {} as Record<NumericCounter, number>;
  for (const k of Object.keys(a) as (keyof PlcCounters)[]) {
    if (k !== 'StationAlive' && k !== 'StationReady') d[k] = b[k] - a[k];
  }
  return d;
}

/** A plain OPC UA client, as a PLC programmer's tool would be. */
export async function rawClient(endpoint: string, folder: string): Promise<{ session: ClientSession; close: () => Promise<void> }> {
  const client = OPCUAClient.create({
    endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: folder, automaticallyAcceptUnknownCertificate: true }),
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
  });
  await client.connect(endpoint);
  const session = await client.createSession();
  return { session, close: async () => { await session.close(); await client.disconnect(); } };
}
