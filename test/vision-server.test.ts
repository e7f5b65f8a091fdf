/**
 * The station as an OPC 40100 (Machine Vision) server, end to end: a running station (the PLC
 * simulator's line clock triggers the replay camera at 100 parts/s, onnxruntime-node, SQLite)
 * with its vision server on, and a real node-opcua client on 127.0.0.1 that
 *  - browses the VisionSystem (VisionStateMachine, ResultManagement, RecipeManagement),
 *  - drives the state machine through its methods: Stop makes every part a fail-safe reject
 *    (code 7 in the rows and at the PLC), StartContinuous makes the station inspect again,
 *  - receives one ResultReadyEvent per part, each with the PartId and ResultState of its row,
 *  - prepares recipes (the validation gate refuses a bad package, coded) and activates a good
 *    one (a promotion).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds, DataType, MessageSecurityMode, NodeId, OPCUACertificateManager, OPCUAClient, SecurityPolicy, StatusCodes,
  TimestampsToReturn, Variant, constructEventFilter, type ClientSession, type ClientSubscription,
} from 'node-opcua';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { MV_NAMESPACE_URI } from '../inspector/vision-server/vision-address-space.js';
import { VisionError } from '../inspector/vision-server/vision-protocol.js';
import { subscribeResultEvents, type ResultSubscription } from '../inspector/vision-server/result-subscriber.js';
import { expectEveryPartJudgedOnce } from './helpers/parts-accounted.js';
import { lineOptions, stopLineAndCapture, triggeredCamera } from './helpers/line.js';
import { until } from './helpers/wait.js';

const work = mkdtempSync(join(tmpdir(), 'inspector-vision-'));
const root = join(work, 'models');

function makeVersion(version: string, edit: (m: Record<string, any>) => void = () => undefined): void {
  const dir = join(root, 'default', version);
  cpSync('models/default/1.0.0', dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.version = version;
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** One ResultReadyEvent as the client got it. */
interface Got { resultId: string; partId: string; resultState: number; isSimulated: boolean; creationTime: Date; processingTimes: any; pass: boolean; code: number }

/** What the spec's ResultStateDataType says of a row (12.19): judged → 1 Completed, stopped → 3 Aborted, not judged → 4 Failed. */
function expectedState(row: { reason: string | null; code: number }): number {
  if (row.reason === 'inspection_stopped') return 3;
  return row.reason === null && row.code !== 2 && row.code !== 5 ? 1 : 4;
}

describe('OPC 40100 vision server on a running station', () => {
  let sim: PlcSimulator;
  let station: Station;
  let client: OPCUAClient;
  let session: ClientSession;
  let sub: ClientSubscription;
  let mv = -1;
  let system: NodeId;
  const nodes: Record<string, NodeId> = {};
  const events: Got[] = [];
  /** a second subscriber: the benchmark's (scripts/bench.ts --vision-server) */
  let counter: ResultSubscription;

  const partsAccounted = (): number => station.loop.identity.highestAccounted(sim.epoch);
  async function moreParts(n: number, what = `${n} more parts`): Promise<void> {
    const target = partsAccounted() + n;
    await until(() => partsAccounted() >= target, 60_000, what);
  }
  const q = (name: string) => ({ namespaceIndex: mv, name });
  async function child(parent: NodeId, name: string): Promise<NodeId> {
    const r = await session.browse(parent.toString());
    const ref = r.references?.find((x) => x.browseName.name === name);
    if (!ref) throw new Error(`${parent.toString()} has no ${name}: ${r.references?.map((x) => x.browseName.toString()).join(', ')}`);
    return ref.nodeId;
  }
  async function read(id: NodeId): Promise<any> {
    return (await session.read({ nodeId: id, attributeId: AttributeIds.Value })).value.value;
  }
  async function call(object: string, method: string, inputArguments: Variant[] = []) {
    return session.call({ objectId: nodes[object]!, methodId: await child(nodes[object]!, method), inputArguments });
  }
  async function recipeId(id: string): Promise<Variant> {
    const value = await session.constructExtensionObject(new NodeId(NodeId.NodeIdType.NUMERIC, 3002, mv), { id });
    return new Variant({ dataType: DataType.ExtensionObject, value });
  }
  const nullExt = (): Variant => new Variant({ dataType: DataType.ExtensionObject, value: null });

  beforeAll(async () => {
    makeVersion('1.0.0');
    makeVersion('1.1.0', (m) => { m.decision.threshold = 0.4; }); // as good as 1.0.0 on the golden set
    makeVersion('1.2.0', (m) => { m.decision.threshold = 0; });   // rejects everything: the gate refuses it
    const [plcPort, triggerPort, visionPort] = [await freePort(), await freePort('udp'), await freePort()];
    const folder = 'test-images/test/parts';
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 1500, certificateFolder: join(work, 'pki-plc'), logger,
      line: lineOptions({ rate: 100, triggerPort, folder }) });
    await sim.start();
    station = await Station.start(resolveConfig({
      station: { budgetMs: 100 },
      camera: triggeredCamera({ triggerPort, folder }),
      model: { packageDir: join(root, 'default', '1.0.0'), providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 5 },
      plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(work, 'pki-station'), security: { mode: 'None' } },
      results: { dbPath: join(work, 'results.sqlite'), imagesDir: work, saveImages: 'none' },
      registry: { root, statePath: join(work, 'registry-state.json'), goldenImages: 16, warmupFrames: 20, latencyBudgetMs: 2000 },
      retention: { enabled: false },
      server: { enabled: false },
      visionServer: { enabled: true, port: visionPort, certificateFolder: join(work, 'pki-vision'), securityModes: ['None'], allowAnonymous: true, pollMs: 50 },
    }), logger);
    expect(station.vision?.endpoint).toMatch(/^opc\.tcp:/);

    client = OPCUAClient.create({
      endpointMustExist: false, securityMode: MessageSecurityMode.None, securityPolicy: SecurityPolicy.None,
      clientCertificateManager: new OPCUACertificateManager({ rootFolder: join(work, 'pki-client') }),
      connectionStrategy: { maxRetry: 3, initialDelay: 200 },
    });
    await client.connect(`opc.tcp://127.0.0.1:${visionPort}`);
    session = await client.createSession();
    mv = (await session.readNamespaceArray()).indexOf(MV_NAMESPACE_URI);

    // events first, then the line: every part's event is expected
    const objects = await session.browse('ns=0;i=85');
    const vs = objects.references?.find((r) => r.browseName.name === 'VisionSystem');
    if (!vs) throw new Error('no VisionSystem under Objects');
    system = vs.nodeId;
    sub = await session.createSubscription2({ requestedPublishingInterval: 100, publishingEnabled: true, requestedLifetimeCount: 6000,
      requestedMaxKeepAliveCount: 50, maxNotificationsPerPublish: 0 });
    const filter = constructEventFilter(['EventType', q('ResultId'), q('PartId'), q('ResultState'), q('IsSimulated'), q('CreationTime'),
      q('ProcessingTimes'), q('ResultContent')]);
    const item = await sub.monitor({ nodeId: system, attributeId: AttributeIds.EventNotifier },
      { samplingInterval: 0, filter, queueSize: 100_000, discardOldest: false }, TimestampsToReturn.Neither);
    item.on('changed', (f: any) => {
      const content = f[7].value as Variant[];
      events.push({ resultId: f[1].value?.id, partId: f[2].value?.id, resultState: f[3].value, isSimulated: f[4].value,
        creationTime: f[5].value, processingTimes: f[6].value, pass: content[0]!.value, code: content[1]!.value });
    });
    counter = await subscribeResultEvents(`opc.tcp://127.0.0.1:${visionPort}`);
    sim.startLine();
  }, 180_000);

  afterAll(async () => {
    await counter?.close();
    await sub?.terminate().catch(() => undefined);
    await session?.close().catch(() => undefined);
    await client?.disconnect().catch(() => undefined);
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('browses the VisionSystem: the state machine, result and recipe management in the Machine Vision namespace', async () => {
    expect(mv).toBeGreaterThan(0);
    const children = (await session.browse(system.toString())).references!.map((r) => r.browseName);
    for (const name of ['VisionStateMachine', 'ResultManagement', 'RecipeManagement']) {
      expect(children.find((b) => b.name === name)?.namespaceIndex, name).toBe(mv);
    }
    nodes.sm = await child(system, 'VisionStateMachine');
    nodes.auto = await child(nodes.sm!, 'AutomaticModeStateMachine');
    nodes.recipes = await child(system, 'RecipeManagement');
    // the station started inspecting: Operational / ContinuousExecution, reached by the automatic transitions
    expect((await read(await child(nodes.sm!, 'CurrentState'))).text).toBe('Operational');
    expect((await read(await child(nodes.auto!, 'CurrentState'))).text).toBe('ContinuousExecution');
    expect((await read(await child(nodes.auto!, 'LastTransition'))).text).toBe('ReadyToContinuousExecutionAuto');
    const id = await read(await child(await child(nodes.sm!, 'CurrentState'), 'Id'));
    expect((await session.read({ nodeId: id, attributeId: AttributeIds.BrowseName })).value.value.name).toBe('Operational');
  }, 60_000);

  it('Stop: every part is a fail-safe reject (rows and PLC); StartContinuous: inspected again; methods only where the state allows', async () => {
    await moreParts(50, 'inspected parts before the stop');
    const stop = await call('auto', 'Stop', [new Variant({ dataType: DataType.Int32, value: 0 }), new Variant({ dataType: DataType.String, value: 'test' })]);
    expect(stop.statusCode).toBe(StatusCodes.Good);
    expect(stop.outputArguments![0]!.value).toBe(VisionError.OK);
    expect(station.loop.inspecting).toBe(false);
    expect((await read(await child(nodes.auto!, 'CurrentState'))).text).toBe('Ready');
    expect((await read(await child(nodes.auto!, 'LastTransition'))).text).toBe('ContinuousExecutionToReadyStop');
    const stoppedBefore = station.loop.rec.notInspected.inspection_stopped;
    await until(() => station.loop.rec.notInspected.inspection_stopped >= stoppedBefore + 40, 60_000, 'stopped parts');
    // not allowed in Ready: Stop again, Abort; nothing changes
    expect((await call('auto', 'Stop', [new Variant({ dataType: DataType.Int32, value: 0 }), new Variant({ dataType: DataType.String, value: '' })])).statusCode)
      .toBe(StatusCodes.BadInvalidState);
    const start = await call('auto', 'StartContinuous', [nullExt(), nullExt(), nullExt(), nullExt(), new Variant({ dataType: DataType.Variant, arrayType: 1, value: [] })]);
    expect(start.statusCode).toBe(StatusCodes.Good);
    expect(start.outputArguments![1]!.value).toBe(VisionError.OK);
    expect(start.outputArguments![0]!.value.id).toMatch(new RegExp(`^${station.runId}/2$`)); // the second job of the run
    expect(station.loop.inspecting).toBe(true);
    expect((await read(await child(nodes.auto!, 'CurrentState'))).text).toBe('ContinuousExecution');
    const inspectedBefore = station.loop.rec.parts;
    await until(() => station.loop.rec.parts >= inspectedBefore + 40, 60_000, 'inspected parts after the start');
  }, 180_000);

  it('one ResultReadyEvent per part, with the PartId and ResultState of its row; stopped parts are rejects at the PLC', async () => {
    await stopLineAndCapture(station, sim);
    const { rows } = await expectEveryPartJudgedOnce(station, sim);
    const ofRun = rows.filter((r) => r.part_id !== null);
    await until(() => events.length >= ofRun.length, 60_000, `${ofRun.length} events (got ${events.length})`);
    const byPart = new Map<string, Got>();
    for (const e of events) {
      expect(byPart.has(e.partId), `a second event for part ${e.partId}`).toBe(false);
      byPart.set(e.partId, e);
    }
    expect(byPart.size).toBe(ofRun.length);
    await until(() => counter.events >= ofRun.length, 60_000, 'the second subscriber\'s events');
    expect(counter.events).toBe(ofRun.length);
    const outcomes = sim.outcomes();
    let stopped = 0;
    let stoppedAtPlc = 0;
    for (const r of ofRun) {
      const e = byPart.get(`${r.line_epoch}/${r.part_id}`);
      expect(e, `the event of part ${r.part_id}`).toBeDefined();
      expect(e!.resultState, `part ${r.part_id} (${r.reason ?? 'inspected'})`).toBe(expectedState(r));
      expect(e!.pass).toBe(r.verdict === 'pass');
      expect(e!.code).toBe(r.code);
      expect(e!.resultId).toBe(`${station.config.station.name}/${r.run_id}/${r.seq}`);
      expect(e!.isSimulated).toBe(true); // a replay camera
      expect(e!.processingTimes.startTime.getTime()).toBe(Math.trunc(r.captured_at_ms)); // DateTime: whole ms here
      if (r.reason === 'inspection_stopped') {
        stopped++;
        expect(r.verdict).toBe('reject');
        expect(r.code).toBe(7);
        const o = outcomes.get(r.part_id!);
        expect(o?.outcome, `part ${r.part_id} at the PLC`).not.toBe('accepted');
        if (o?.code !== null && o?.code !== undefined) { expect(o.code).toBe(7); stoppedAtPlc++; }
      }
    }
    expect(stopped).toBeGreaterThanOrEqual(40);
    expect(stoppedAtPlc).toBeGreaterThan(0);
    // inspected parts before and after the stop, accepted at the PLC
    const stoppedIds = ofRun.filter((r) => r.reason === 'inspection_stopped').map((r) => r.part_id!);
    const [first, last] = [Math.min(...stoppedIds), Math.max(...stoppedIds)];
    const acceptedAfter = ofRun.filter((r) => r.part_id! > last && outcomes.get(r.part_id!)?.outcome === 'accepted');
    const acceptedBefore = ofRun.filter((r) => r.part_id! < first && outcomes.get(r.part_id!)?.outcome === 'accepted');
    expect(acceptedBefore.length).toBeGreaterThan(0);
    expect(acceptedAfter.length).toBeGreaterThan(0);
  }, 180_000);

  it('PrepareRecipe runs the validation gate: a bad package is refused (coded), a good one is prepared and ActivateRecipe promotes it', async () => {
    const prepBad = await call('recipes', 'PrepareRecipe', [await recipeId('default@1.2.0'), nullExt()]);
    expect(prepBad.statusCode).toBe(StatusCodes.Good);
    const [idOut, completed, error] = prepBad.outputArguments!;
    expect(error!.value).toBe(VisionError.GATE_REFUSED);
    expect(completed!.value).toBe(false);
    expect(idOut!.value.description.text).toMatch(/^INSPECTOR_MODEL_VALIDATION_FAILED: .*accuracy/);
    // not prepared: not activated either
    const actBad = await call('recipes', 'ActivateRecipe', [await recipeId('default@1.2.0')]);
    expect(actBad.outputArguments![1]!.value).toBe(VisionError.NOT_PREPARED);
    const unknown = await call('recipes', 'PrepareRecipe', [await recipeId('default@9.9.9'), nullExt()]);
    expect(unknown.outputArguments![2]!.value).toBe(VisionError.NOT_FOUND);
    expect(station.models.state.live).toEqual({ name: 'default', version: '1.0.0' });

    const prep = await call('recipes', 'PrepareRecipe', [await recipeId('default@1.1.0'), nullExt()]);
    expect(prep.outputArguments![2]!.value).toBe(VisionError.OK);
    expect(prep.outputArguments![1]!.value).toBe(true);
    expect(station.models.state.live).toEqual({ name: 'default', version: '1.0.0' }); // prepare changes nothing on the line
    const act = await call('recipes', 'ActivateRecipe', [await recipeId('default@1.1.0')]);
    expect(act.outputArguments![1]!.value, act.outputArguments![0]!.value).toBe(VisionError.OK);
    expect(station.models.state.live).toEqual({ name: 'default', version: '1.1.0' });
    expect(station.runner.modelVersion).toBe('1.1.0');
    expect(station.models.state.history.at(-1)).toMatchObject({ action: 'promote', actor: 'opcua:anonymous' });
    const list = await call('recipes', 'GetRecipeListFiltered', [nullExt(), nullExt(), new Variant({ dataType: DataType.Int32, value: 1 }),
      new Variant({ dataType: DataType.UInt32, value: 0 }), new Variant({ dataType: DataType.UInt32, value: 0 }), new Variant({ dataType: DataType.Int32, value: 0 })]);
    expect(list.statusCode).toBe(StatusCodes.Good);
    expect((list.outputArguments![3]!.value as Array<{ id: string }>).map((r) => r.id).sort()).toEqual(['default@1.0.0', 'default@1.1.0']);
  }, 300_000);

  it('Halt stops inspection, Reset goes back to Preoperational, SelectModeAutomatic to Ready', async () => {
    const cause = [new Variant({ dataType: DataType.Int32, value: 0 }), new Variant({ dataType: DataType.String, value: 'test' })];
    expect((await call('sm', 'Halt', cause)).statusCode).toBe(StatusCodes.Good);
    expect(station.loop.inspecting).toBe(false);
    expect((await read(await child(nodes.sm!, 'CurrentState'))).text).toBe('Halted');
    expect((await read(await child(nodes.sm!, 'LastTransition'))).text).toBe('OperationalToHalted');
    expect((await call('auto', 'StartContinuous', [nullExt(), nullExt(), nullExt(), nullExt(), new Variant({ dataType: DataType.Variant, arrayType: 1, value: [] })])).statusCode)
      .toBe(StatusCodes.BadInvalidState);
    expect((await call('sm', 'Reset', cause)).statusCode).toBe(StatusCodes.Good);
    expect((await read(await child(nodes.sm!, 'CurrentState'))).text).toBe('Preoperational');
    expect((await call('sm', 'SelectModeAutomatic')).statusCode).toBe(StatusCodes.Good);
    expect((await read(await child(nodes.sm!, 'CurrentState'))).text).toBe('Operational');
    expect((await read(await child(nodes.auto!, 'CurrentState'))).text).toBe('Ready');
    expect(station.loop.inspecting).toBe(false);
    expect(station.vision?.state).toEqual({ top: 'Operational', auto: 'Ready' });
  }, 60_000);
});
