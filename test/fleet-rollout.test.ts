/**
 * Fleet rollout (inspector/cli/fleet-rollout.ts) on two real stations on loopback: each with its own
 * PLC simulator line (replay-triggered camera, ONNX, OPC UA), its HTTPS server (self-signed; the
 * client trusts station A by pinned fingerprint, station B by its certificate as CA) and registry.
 *
 * - A candidate the second station's gate refuses (B allows no accuracy loss, A allows any): A, the
 *   canary, is promoted, B refuses, A is rolled back: both end on the model they had, no shadows left.
 * - An identical retrained copy: both shadow it with full agreement, pass their gates, are promoted.
 * - The fleet rollback puts both back in one call.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { ReviewStore } from '../inspector/review/review-store.js';
import { reviewDbPathFor } from '../inspector/review/review-db.js';
import { packageForm } from '../inspector/cli/models-command.js';
import { readStationsFile, reportTable, rollbackFleet, rolloutPackage, type FleetReport, type FleetStation } from '../inspector/cli/fleet-rollout.js';
import { lineOptions, triggeredCamera } from './helpers/line.js';
import { until } from './helpers/wait.js';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'inspector-fleet-'));
const FOLDER = 'test-images/test/parts';

/** A copy of models/default/1.0.0 as `version` in `dir`, with manifest edits. */
function makeVersion(dir: string, version: string, edit: (m: Record<string, any>) => void = () => undefined): string {
  cpSync('models/default/1.0.0', dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  m.version = version;
  edit(m);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  return dir;
}

interface Running { name: string; sim: PlcSimulator; station: Station; token: string; certFile: string }

async function startStation(name: string, accuracyMargin: number): Promise<Running> {
  const dir = join(work, name);
  const root = join(dir, 'models');
  makeVersion(join(root, 'default', '1.0.0'), '1.0.0');
  const [plcPort, triggerPort] = [await freePort(), await freePort('udp')];
  const sim = new PlcSimulator({ port: plcPort, gateWindowMs: 1500, certificateFolder: join(dir, 'pki-plc'), logger,
    line: lineOptions({ rate: 10, triggerPort, folder: FOLDER }) });
  await sim.start();
  const config = resolveConfig({
    station: { name, budgetMs: 100 },
    camera: triggeredCamera({ triggerPort, folder: FOLDER }),
    model: { packageDir: join(root, 'default', '1.0.0'), providers: ['cpu'], intraOpNumThreads: 1, warmupRuns: 3 },
    plc: { endpoint: `opc.tcp://127.0.0.1:${plcPort}`, certificateFolder: join(dir, 'pki-station'), security: { mode: 'None' } },
    results: { dbPath: join(dir, 'results.sqlite'), imagesDir: dir, saveImages: 'none' },
    // latency is test/registry.test.ts's; the accuracy margin is what makes B refuse a worse candidate
    registry: { root, statePath: join(dir, 'registry-state.json'), goldenImages: 12, warmupFrames: 10, latencyBudgetMs: 5000, accuracyMargin },
    retention: { enabled: false },
    server: { enabled: true, host: '127.0.0.1', port: 0 }, // HTTPS, self-signed (the default)
  });
  const review = new ReviewStore({ reviewDbPath: reviewDbPathFor(config.results.dbPath) });
  let token: string;
  try {
    const ml = await review.accounts.create('ml-fleet', 'fleet-password-1', 'ml');
    token = review.accounts.createToken(ml.id, 'fleet').token;
  } finally {
    review.close();
  }
  const station = await Station.start(config, logger.child({ station: name }));
  sim.startLine();
  await until(() => station.loop.rec.parts >= 5, 60_000, `${name}: the first parts`);
  return { name, sim, station, token, certFile: join(dir, 'pki-station', 'https', 'cert.pem') };
}

const live = (r: Running) => ({ name: r.station.runner.modelName, version: r.station.runner.modelVersion });

describe('fleet rollout on two stations', () => {
  let a: Running;
  let b: Running;
  let fleet: FleetStation[];
  let stationsFile: string;

  beforeAll(async () => {
    a = await startStation('station-a', 1);   // allows any accuracy loss
    b = await startStation('station-b', 0);   // allows none
    // a stations file as an ML team writes it: A pinned by fingerprint, B trusted through its certificate file (relative path)
    cpSync(b.certFile, join(work, 'b-cert.pem'));
    stationsFile = join(work, 'stations.json');
    writeFileSync(stationsFile, JSON.stringify({ stations: [
      { name: 'station-a', url: a.station.httpAddress, token: a.token, fingerprint: `SHA256:${a.station.httpsFingerprint}` },
      { name: 'station-b', url: b.station.httpAddress, token: b.token, ca: 'b-cert.pem' },
    ] }), { mode: 0o600 });
    fleet = await readStationsFile(stationsFile);
  }, 240_000);

  afterAll(async () => {
    for (const r of [a, b]) {
      await r?.station.stop();
      await r?.sim.stop();
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('serves both stations over HTTPS', () => {
    expect(a.station.httpAddress).toMatch(/^https:/);
    expect(b.station.httpAddress).toMatch(/^https:/);
    expect(fleet.map((s) => s.name)).toEqual(['station-a', 'station-b']);
  });

  it('stops at the second station\'s gate refusal and rolls the canary back: both stay on their model', async () => {
    const worse = makeVersion(join(work, 'pkg-1.1.0'), '1.1.0', (m) => { m.decision.threshold = 0; }); // rejects every part
    // as an ML engineer runs it: the command exits 1 with the report (--json) on stdout and the progress on stderr
    const cli = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'models', 'push', worse, '--stations', stationsFile,
      '--min-agreement', '0', '--min-parts', '5', '--shadow-timeout', '120', '--json'], { maxBuffer: 1 << 24 })
      .then(() => null, (e: { code: number; stdout: string; stderr: string }) => e);
    expect(cli?.code).toBe(1);
    expect(cli!.stderr).toMatch(/inspector: INSPECTOR_FLEET_REFUSED: rollout of default@1\.1\.0 stopped at station-b; rolled back station-a/);
    const lines = cli!.stderr.split('\n');
    const r = JSON.parse(cli!.stdout) as FleetReport;
    expect(r.ok).toBe(false);
    expect(r.stoppedAt).toBe('station-b');
    const [ra, rb] = r.stations;
    expect(ra).toMatchObject({ name: 'station-a', status: 'rolled-back', pushed: 'pushed', gate: { ok: true },
      before: { name: 'default', version: '1.0.0' }, after: { name: 'default', version: '1.0.0' } });
    expect(ra!.shadow!.compared).toBeGreaterThanOrEqual(5);
    expect(rb).toMatchObject({ name: 'station-b', status: 'refused', gate: { ok: false }, error: { code: 'INSPECTOR_MODEL_VALIDATION_FAILED' },
      after: { name: 'default', version: '1.0.0' } });
    // the stations themselves say so: the live runners, no shadow left, A's history has the promotion and its rollback
    expect(live(a)).toEqual({ name: 'default', version: '1.0.0' });
    expect(live(b)).toEqual({ name: 'default', version: '1.0.0' });
    expect(a.station.models.state.shadow).toBeNull();
    expect(b.station.models.state.shadow).toBeNull();
    expect(a.station.models.state.history.slice(-2).map((e) => e.action)).toEqual(['promote', 'rollback']);
    expect(lines.join('\n')).toMatch(/fleet: station-a: promoted \(canary/);
    const table = reportTable(r);
    expect(table).toMatch(/station-a\s+rolled-back\s+default@1\.0\.0\s+default@1\.0\.0/);
    expect(table).toMatch(/station-b\s+refused .*INSPECTOR_MODEL_VALIDATION_FAILED/);
  }, 300_000);

  it('promotes an agreeing candidate on both, canary first, then rolls the fleet back in one call', async () => {
    const same = makeVersion(join(work, 'pkg-1.2.0'), '1.2.0'); // the same graph and threshold: full agreement, same accuracy
    const r = await rolloutPackage(same, () => packageForm(same), fleet, { minAgreement: 0.99, minParts: 8, shadowTimeoutMs: 120_000, pollMs: 250 });
    expect(r.ok).toBe(true);
    for (const s of r.stations) {
      expect(s).toMatchObject({ status: 'promoted', gate: { ok: true }, after: { name: 'default', version: '1.2.0' }, error: null });
      expect(s.shadow!.compared).toBeGreaterThanOrEqual(8);
      expect(s.shadow!.agreement).toBe(1);
    }
    expect(live(a).version).toBe('1.2.0');
    expect(live(b).version).toBe('1.2.0');

    // the fleet rollback as an ML engineer runs it: one command, a table per station
    const back = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', 'models', 'rollback', '--stations', stationsFile, '--if-live', 'default@1.2.0']);
    expect(back.stdout).toMatch(/station-a\s+rolled-back\s+default@1\.2\.0\s+default@1\.0\.0/);
    expect(back.stdout).toMatch(/station-b\s+rolled-back\s+default@1\.2\.0\s+default@1\.0\.0/);
    expect(live(a).version).toBe('1.0.0');
    expect(live(b).version).toBe('1.0.0');
    // --if-live: a fleet already off that model is left alone
    const again = await rollbackFleet(fleet, { ifLive: { name: 'default', version: '1.2.0' } });
    expect(again.ok).toBe(true);
    expect(again.stations.map((s) => s.status)).toEqual(['skipped', 'skipped']);
  }, 300_000);

  it('refuses a stations file that is not one, saying what is expected', async () => {
    const bad = join(work, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ name: 'x', url: 'ftp://x' }]));
    await expect(readStationsFile(bad)).rejects.toMatchObject({ code: 'INSPECTOR_FLEET_FILE' });
    await expect(readStationsFile(bad)).rejects.toThrow(/a list of \{ name, url, token, ca\?, fingerprint\? \}/);
  });
});
