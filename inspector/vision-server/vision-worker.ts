/**
 * The OPC 40100 vision server's worker thread: a node-opcua server with the Machine Vision
 * nodeset, the VisionSystem (vision-address-space.ts) and its behaviour (vision-methods.ts),
 * and the tail of the results database that raises one ResultReadyEvent per part. All of
 * it is off the part loop's event loop: the main thread only answers a few RPCs (switch
 * inspection, recipes) and posts the station's fault when it changes.
 */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy, nodesets } from 'node-opcua';
import { logger } from '../core/logger.js';
import { RpcClient } from '../server/rpc.js';
import { buildVisionSystem, ResultEvents } from './vision-address-space.js';
import { VisionController } from './vision-methods.js';
import { ResultTail, partIdOf, resultIdOf, resultStateOf, type TailRow } from './result-tail.js';
import type { FromVisionWorker, ToVisionWorker, VisionWorkerData } from './vision-protocol.js';

if (!parentPort) throw new Error('vision-worker must run in a worker thread');
const port = parentPort;
const data = workerData as VisionWorkerData;
const log = logger.child({ mod: 'vision-server' });
const post = (m: FromVisionWorker): void => port.postMessage(m);
const rpc = new RpcClient(port, 5000);

const offersNone = data.securityModes.includes('None');
const server = new OPCUAServer({
  port: data.port,
  host: data.host,
  hostname: data.host,
  // no automatic trust: a client certificate is used once an operator moved it from rejected/ to trusted/
  serverCertificateManager: new OPCUACertificateManager({ rootFolder: data.certificateFolder, automaticallyAcceptUnknownCertificate: false }),
  userCertificateManager: new OPCUACertificateManager({ rootFolder: join(data.certificateFolder, 'users'), automaticallyAcceptUnknownCertificate: false }),
  nodeset_filename: [nodesets.standard, nodesets.machineVision],
  serverInfo: { applicationUri: `urn:inline-inspector:${data.station}:vision`, productUri: 'urn:inline-inspector:vision',
    applicationName: { text: `inline-inspector ${data.station} (OPC 40100 Machine Vision)` } },
  securityModes: data.securityModes.map((m) => MessageSecurityMode[m]),
  securityPolicies: [...(offersNone ? [SecurityPolicy.None] : []), ...data.securityPolicies.map((p) => SecurityPolicy[p])],
  allowAnonymous: data.allowAnonymous,
  userManager: { isValidUser: (u: string, p: string) => data.users.some((x) => x.userName === u && x.password === p) },
  // without a None endpoint, a restricted None endpoint still answers GetEndpoints
  disableDiscovery: offersNone,
});

let tail: ResultTail | null = null;
let controller: VisionController | null = null;
try {
  await server.initialize();
  const addressSpace = server.engine.addressSpace!;
  const nodes = buildVisionSystem(addressSpace);
  controller = new VisionController(addressSpace, nodes, rpc, data.runId, (state, transition) => post({ type: 'state', state, transition }));
  controller.bind();
  controller.addActivateRecipe();
  controller.begin(data.inspecting, data.fault, data.resume);
  const events = new ResultEvents(addressSpace, nodes);
  const c = controller;
  tail = new ResultTail(data.resultsDbPath, (row: TailRow) => {
    const end = row.captured_at_ms + (row.frame_to_verdict_ms ?? 0);
    events.raise({
      resultId: resultIdOf(data.station, row), partId: partIdOf(row), jobId: c.jobId, resultState: resultStateOf(row),
      isSimulated: data.isSimulated, creationTime: new Date(end), startTime: new Date(row.captured_at_ms), endTime: new Date(end),
      processingMs: row.frame_to_verdict_ms ?? Number.NaN, recipe: `${row.model_name}@${row.model_version}`, configuration: data.station,
      pass: row.verdict === 'pass', code: row.code, score: row.score ?? Number.NaN, reason: row.reason ?? '',
    });
  });
  tail.start(data.pollMs);
  await server.start();
  const endpoint = server.getEndpointUrl();
  log.info({ endpoint, modes: data.securityModes, policies: data.securityPolicies }, 'OPC 40100 vision server listening');
  post({ type: 'listening', endpoint });
} catch (err) {
  tail?.close();
  await server.shutdown(0).catch(() => undefined);
  post({ type: 'listen-error', error: { code: (err as { code?: string }).code ?? 'INSPECTOR_VISION_SERVER', message: (err as Error).message } });
}

port.on('message', (msg: ToVisionWorker) => {
  if (msg?.type === 'fault') controller?.onFault(msg.fault);
  else if (msg?.type === 'close') {
    tail?.close();
    tail = null;
    void server.shutdown(0).catch(() => undefined).then(() => post({ type: 'closed' }));
  }
});
