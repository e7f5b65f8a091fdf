/**
 * A plain OPC UA client that subscribes to a VisionSystem's ResultReadyEvents, as a plant's
 * MES would: used by the benchmark (`scripts/bench.ts --vision-server`) so the server raises
 * and publishes every event for a real subscriber while the PLC writes are measured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, TimestampsToReturn, constructEventFilter,
} from 'node-opcua';
import { MV_NAMESPACE_URI } from './vision-address-space.js';

export interface ResultSubscription {
  /** ResultReadyEvents received so far */
  readonly events: number;
  close(): Promise<void>;
}

/** Connect (SecurityMode None: a loopback benchmark), find the VisionSystem under Objects and count its ResultReadyEvents. */
export async function subscribeResultEvents(endpoint: string): Promise<ResultSubscription> {
  const pki = mkdtempSync(join(tmpdir(), 'vision-subscriber-pki-'));
  const client = OPCUAClient.create({ endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: pki }), connectionStrategy: { maxRetry: 3, initialDelay: 200 } });
  await client.connect(endpoint);
  const session = await client.createSession();
  const mv = (await session.readNamespaceArray()).indexOf(MV_NAMESPACE_URI);
  const vs = (await session.browse('ns=0;i=85')).references?.find((r) => r.browseName.name === 'VisionSystem');
  if (mv < 0 || !vs) throw new Error(`${endpoint} serves no VisionSystem`);
  const sub = await session.createSubscription2({ requestedPublishingInterval: 100, publishingEnabled: true, requestedLifetimeCount: 6000,
    requestedMaxKeepAliveCount: 50, maxNotificationsPerPublish: 0 });
  const q = (name: string) => ({ namespaceIndex: mv, name });
  const filter = constructEventFilter(['EventType', q('ResultId'), q('PartId'), q('ResultState'), q('IsSimulated'), q('CreationTime'), q('ProcessingTimes')]);
  const item = await sub.monitor({ nodeId: vs.nodeId, attributeId: AttributeIds.EventNotifier },
    { samplingInterval: 0, filter, queueSize: 100_000, discardOldest: false }, TimestampsToReturn.Neither);
  const state = { events: 0 };
  item.on('changed', () => { state.events++; });
  return {
    get events() { return state.events; },
    async close() {
      await sub.terminate().catch(() => undefined);
      await session.close().catch(() => undefined);
      await client.disconnect().catch(() => undefined);
      rmSync(pki, { recursive: true, force: true });
    },
  };
}
