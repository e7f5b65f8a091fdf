/**
 * The whole station's own load for `npm run bench -- --station-load` (issue 13, item 4): what runs
 * beside the line on a real station, switched on together once the line is up.
 *
 *  - a shadow model: a copy of the live package under the next patch version, pushed into the
 *    station's registry and shadowed through its model lifecycle (station.models), as an ML
 *    engineer would; it scores every frame the tap offers it (niced worker, never awaited);
 *  - one real browser: Debian's Chromium (headless, driven by playwright-core as the browser tests
 *    do) logged in as a QA user on the Live page: the WebSocket feed, the operator panel's polling,
 *    the live frame JPEGs;
 *  - a bounded API load on the review routes (scripts/bench-api-load.ts: a fixed rate, at most a
 *    few requests open) with a bearer token of the same user;
 *  - images of rejects saved (the bench's `--save-images`, at least `rejects`: see bench.ts).
 *
 * The server is the station's own (HTTP on a free loopback port, in its worker thread): the
 * config hunk is `stationLoadConfig`. `stop()` ends everything it started (the browser closed even
 * when something fails) and returns the LoadReport the bench puts in its JSON as `station_load`;
 * `whileLoaded` adds the figures of the parts captured once all of it was on. A set-up that fails
 * half-way closes what it opened before it throws; a bench that dies between start and stop still
 * leaves no browser behind (playwright-core kills what it launched when the process exits).
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Logger } from '../inspector/core/logger.js';
import type { DeepPartial, StationConfig } from '../inspector/station/config.js';
import type { Station } from '../inspector/station/station.js';
import { ReviewStore } from '../inspector/review/review-store.js';
import { reviewDbPathFor } from '../inspector/review/review-db.js';
import { packageFiles } from '../inspector/registry/signing.js';
import { parseManifest } from '../inspector/inference/model-package.js';
import { openReadOnly } from '../inspector/results/result-store.js';
import type { ShadowStats } from '../inspector/registry/shadow-tap.js';
import { ApiLoad, type ApiLoadReport } from './bench-api-load.js';

export const CHROMIUM = '/usr/bin/chromium';
const ACTOR = 'bench-station-load';

export interface LoadReport {
  /** from the start of the load's set-up to the browser on Live and the API load running */
  setup_ms: number;
  /** wall clock (epoch ms) when all of the load was on: parts captured from then on ran under all of it */
  loaded_at_ms: number;
  /** parts with a verdict when the set-up began / when all of the load was on */
  parts_at_start: number;
  parts_when_loaded: number;
  seconds_loaded: number;
  api: ApiLoadReport;
  browser: {
    /** uncaught exceptions in the page, console errors, failed requests, HTTP ≥ 400 (each listed, first 20) */
    page_errors: number;
    errors: string[];
    live_feed_messages: number;
    live_feed_by_type: Record<string, number>;
    responses: number;
  };
  /** the tap's own counts (this run: offered frames, compared, skipped (shadow busy), errors, agree, disagree) and the agreement */
  shadow: Omit<ShadowStats, 'imagesOffered'> & { model: string; agreement: number | null };
  images: { written: number; dropped: number };
  /**
   * The parts captured while all of the load was on (the set-up's transient excluded), from the
   * station's own rows once the gate outcomes are read back (`whileLoaded`, after settleOutcomes).
   */
  while_loaded?: WhileLoaded;
}

export interface WhileLoaded {
  parts: number;
  not_inspected: Record<string, number>;
  /** the gate's outcome read back from the PLC (accepted, rejected, timeout, late; 'unknown' where none was read) */
  gate_outcomes: Record<string, number>;
  frame_to_verdict_ms: { p50: number; p99: number; max: number };
  plc_write_ms: { p50: number; p99: number; max: number };
}

export interface StationLoad { stop(): Promise<LoadReport> }

/** The station config the load needs: the server on loopback HTTP, a registry of its own in the bench's work folder. */
export function stationLoadConfig(o: { work: string; httpPort: number }): DeepPartial<StationConfig> {
  return {
    server: { enabled: true, host: '127.0.0.1', port: o.httpPort, tls: { mode: 'off' } },
    // pushes land here, not in the repository's models/ (the live package stays where --model says)
    registry: { root: join(o.work, 'models'), statePath: join(o.work, 'registry-state.json') },
  };
}

/** A QA account and a bearer token for it, in the station's review database (as `inspector users` / tokens do). */
export async function createLoadUser(resultsDbPath: string): Promise<{ username: string; password: string; token: string }> {
  const username = 'bench-qa';
  const password = randomBytes(12).toString('base64url');
  const review = new ReviewStore({ reviewDbPath: reviewDbPathFor(resultsDbPath) });
  try {
    const account = await review.accounts.create(username, password, 'qa'); // a fresh results folder: a new account
    return { username, password, token: review.accounts.createToken(account.id, 'bench API load').token };
  } finally {
    review.close();
  }
}

/** Push a copy of the live package with the next patch version and shadow it, through the station's lifecycle. */
async function shadowCopy(station: Station, livePackageDir: string): Promise<string> {
  const manifest = parseManifest(await readFile(join(livePackageDir, 'manifest.json'), 'utf8'));
  const [maj, min, patch] = manifest.version.split('.').map(Number) as [number, number, number];
  const version = `${maj}.${min}.${patch + 1}`;
  const staging = await station.models.registry.stagingDir();
  // the package's own files, no signature.json: the copy's manifest differs (another version)
  for (const f of packageFiles(manifest).filter((f) => f !== 'manifest.json')) await copyFile(join(livePackageDir, f), join(staging, f));
  await writeFile(join(staging, 'manifest.json'), JSON.stringify({ ...manifest, version }, null, 2));
  const ref = await station.models.push(staging, ACTOR);
  await station.models.shadow(ref, ACTOR);
  return `${ref.name}@${ref.version}`;
}

/**
 * Switch the load on once the line is up (waits for the station's first verdict); `rate`: API
 * requests per second. Throws, with nothing left running, when any part of it cannot start.
 */
export async function startStationLoad(o: {
  station: Station; baseUrl: string; resultsDbPath: string; livePackageDir: string; rate: number; log: Logger;
}): Promise<StationLoad> {
  const { station, log } = o;
  // never before the line is up: its first verdict (the PLC link up, the line firing, the model answering)
  const upBy = performance.now() + 60_000;
  while (station.loop.rec.parts === 0) {
    if (performance.now() > upBy) throw new Error('station load: no verdict within 60 s of the line starting');
    await new Promise((r) => setTimeout(r, 20));
  }
  const t0 = performance.now();
  const partsAtStart = station.loop.rec.parts;
  const errors: string[] = [];
  const feed: Record<string, number> = {};
  let responses = 0;
  let browser: Browser | null = null;
  let shadowModel: string | null = null;
  try {
    const user = await createLoadUser(o.resultsDbPath);
    shadowModel = await shadowCopy(station, o.livePackageDir);
    log.info({ shadow: shadowModel }, 'station load: shadow model running');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    const page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`); });
    page.on('requestfailed', (r) => { if (!/ERR_ABORTED/.test(r.failure()?.errorText ?? '')) errors.push(`failed: ${r.url()}`); });
    page.on('response', (r) => {
      responses++;
      // the login page asks who is logged in first: its 401 is the expected answer
      if (r.status() >= 400 && !(new URL(r.url()).pathname === '/api/auth/me' && r.status() === 401)) errors.push(`http ${r.status()} ${r.url()}`);
    });
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      let type = 'other';
      try { type = String((JSON.parse(String(f.payload)) as { type?: unknown }).type ?? 'other'); } catch { /* not JSON */ }
      feed[type] = (feed[type] ?? 0) + 1;
    }));
    await page.goto(o.baseUrl + '/');
    await page.getByLabel('User').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('nav-live').click();
    await page.getByTestId('operator-panel').waitFor({ timeout: 30_000 });
    const api = new ApiLoad({ baseUrl: o.baseUrl, token: user.token, rate: o.rate });
    api.start();
    const partsWhenLoaded = station.loop.rec.parts;
    const setupMs = performance.now() - t0;
    const loadedAtMs = Date.now();
    const tLoaded = performance.now();
    log.info({ setupMs: Math.round(setupMs), partsWhenLoaded }, 'station load: browser on Live, API load running');
    const started = browser;
    return {
      async stop(): Promise<LoadReport> {
        const secondsLoaded = (performance.now() - tLoaded) / 1000;
        let apiReport: ApiLoadReport;
        try {
          apiReport = await api.stop();
        } finally {
          await started.close();
        }
        const s = (await station.models.report()).stats;
        await station.models.unshadow(ACTOR);
        const im = station.images.stats;
        return {
          setup_ms: setupMs, loaded_at_ms: loadedAtMs, parts_at_start: partsAtStart, parts_when_loaded: partsWhenLoaded, seconds_loaded: secondsLoaded,
          api: apiReport,
          browser: { page_errors: errors.length, errors: errors.slice(0, 20), live_feed_messages: Object.values(feed).reduce((a, b) => a + b, 0),
            live_feed_by_type: { ...feed }, responses },
          shadow: { model: shadowModel!, offered: s?.offered ?? 0, compared: s?.compared ?? 0, skipped: s?.skipped ?? 0, errors: s?.errors ?? 0,
            agree: s?.agree ?? 0, disagree: s?.disagree ?? 0, agreement: s && s.compared > 0 ? s.agree / s.compared : null },
          images: { written: im.written, dropped: im.dropped },
        };
      },
    };
  } catch (err) {
    // a set-up that fails half-way leaves nothing running behind it
    await browser?.close().catch(() => undefined);
    if (shadowModel) await station.models.unshadow(ACTOR).catch(() => undefined);
    throw err;
  }
}

/** Nearest-rank percentiles (as the station's LatencyRecorder). */
function pcts(v: number[]): { p50: number; p99: number; max: number } {
  if (v.length === 0) return { p50: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(v).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/** The rows of the parts captured since the load was all on (call after the station's outcomes are settled). */
export async function whileLoaded(station: Station, resultsDbPath: string, load: LoadReport): Promise<WhileLoaded> {
  await station.store.flush();
  const db = openReadOnly(resultsDbPath);
  try {
    const rows = db.prepare(`SELECT frame_to_verdict_ms AS f2v, plc_write_ms AS plc, reason, gate_outcome AS gate
      FROM results WHERE run_id = ? AND captured_at_ms >= ?`).all(station.runId, load.loaded_at_ms) as
      Array<{ f2v: number | null; plc: number | null; reason: string | null; gate: string | null }>;
    const count = (key: (r: (typeof rows)[number]) => string | null): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of rows) { const k = key(r); if (k !== null) out[k] = (out[k] ?? 0) + 1; }
      return out;
    };
    return {
      parts: rows.length, not_inspected: count((r) => r.reason), gate_outcomes: count((r) => r.gate ?? 'unknown'),
      frame_to_verdict_ms: pcts(rows.flatMap((r) => (r.f2v === null ? [] : [r.f2v]))),
      plc_write_ms: pcts(rows.flatMap((r) => (r.plc === null ? [] : [r.plc]))),
    };
  } finally {
    db.close();
  }
}
