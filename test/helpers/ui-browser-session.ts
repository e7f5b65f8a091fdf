/**
 * The QA UI in a real browser (Debian's chromium, headless, driven by playwright-core)
 * against a real running station, for test/ui-live-label.browser.test.ts and
 * test/ui-queue-export-calibration.browser.test.ts: the PLC simulator's line triggering
 * the replay camera, ONNX model, OPC UA PLC simulator, SQLite results, images of rejects
 * saved, the Fastify server in its worker serving ui/dist and the API, a QA account.
 *
 * Every console error, failed request and unexpected HTTP >= 400 of a watched page is a
 * problem: noProblems() fails the test on any. Screenshots go to artifacts/ui/.
 *
 *   const ui = new UiBrowserSession('inspector-ui-');
 *   beforeAll(async () => { await ui.start(); ({ page, context, base } = ui); }, 180_000);
 *   afterAll(() => ui.stop());
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { logger } from '../../inspector/core/logger.js';
import { freePort } from '../../inspector/core/free-port.js';
import { resolveConfig } from '../../inspector/station/config.js';
import { Station } from '../../inspector/station/station.js';
import { PlcSimulator } from '../../inspector/plc/plc-simulator.js';
import { buildUi } from '../../scripts/build-ui.js';
import { createUiUser, uiLine, uiStationConfig, waitFor } from './ui-station.js';

export const ART = 'artifacts/ui';
export const QA = { username: 'qa-anna', password: 'correct-horse-42' };
export const ADMIN = { username: 'admin-ida', password: 'staple-battery-77' };

export interface Problem { kind: string; text: string }

/** Log in on the page's login form and wait for the navigation bar. */
export async function logIn(page: Page, base: string, user: { username: string; password: string }): Promise<void> {
  await page.goto(base + '/');
  await page.getByLabel('User').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('nav-live').waitFor();
}

export class UiBrowserSession {
  readonly work: string;
  readonly problems: Problem[] = [];
  /** HTTP >= 400 answers the test expects: [method, path regex, status] */
  readonly expected: Array<[string, RegExp, number]> = [
    ['GET', /^\/api\/auth\/me$/, 401], // before logging in
  ];
  base = '';
  context!: BrowserContext;
  page!: Page;
  private sim?: PlcSimulator;
  private station?: Station;
  private browser?: Browser;

  constructor(prefix: string) {
    this.work = mkdtempSync(join(tmpdir(), prefix));
  }

  /** Start the line and the station, wait for three rejects with images, open a watched page. */
  async start(): Promise<void> {
    const work = this.work;
    mkdirSync(ART, { recursive: true });
    await buildUi();
    const [plcPort, triggerPort, httpPort] = [await freePort(), await freePort('udp'), await freePort()];
    const sim = this.sim = new PlcSimulator({ port: plcPort, gateWindowMs: 200, certificateFolder: join(work, 'pki-plc'), logger, line: uiLine(triggerPort) });
    await sim.start();
    const station = this.station = await Station.start(resolveConfig({ ...uiStationConfig({ work, plcPort, triggerPort, httpPort }), calibration: { dir: join(work, 'calibration') } }), logger);
    sim.startLine(); // the line's clock triggers the station's camera with each part's id
    this.base = `http://127.0.0.1:${httpPort}`;
    await createUiUser({ work, base: this.base, ...QA, role: 'qa' });
    // let parts flow until a few rejects have their images on disk
    await waitFor(async () => {
      const rows = await station.store.query({ runId: station.runId, verdict: 'reject', limit: 50 });
      return rows.filter((r) => r.image_path && r.anomaly_map_path).length >= 3;
    }, { timeoutMs: 90_000, what: 'three rejects with images' });

    this.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    this.context = await this.browser.newContext({ viewport: { width: 1366, height: 768 } });
    this.page = await this.context.newPage();
    this.watch(this.page);
  }

  /** Count the page's console errors, failed requests and unexpected HTTP >= 400 as problems. */
  readonly watch = (page: Page): void => {
    const { problems, expected } = this;
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push({ kind: 'console', text: m.text() }); });
    page.on('pageerror', (e) => problems.push({ kind: 'pageerror', text: e.message }));
    page.on('requestfailed', (r) => {
      const why = r.failure()?.errorText ?? '';
      // a navigation (reload) aborts the previous page's image loads and live socket: not a failure
      if (/ERR_ABORTED/.test(why)) return;
      problems.push({ kind: 'requestfailed', text: `${r.method()} ${r.url()} ${why}` });
    });
    page.on('response', (r) => {
      if (r.status() < 400) return;
      const u = new URL(r.url());
      const ok = expected.some(([m, re, s]) => m === r.request().method() && re.test(u.pathname) && s === r.status());
      if (!ok) problems.push({ kind: 'http', text: `${r.request().method()} ${u.pathname}${u.search} → ${r.status()}` });
    });
  };

  readonly shot = (name: string) => this.page.screenshot({ path: join(ART, `${name}.png`) });
  readonly noProblems = () => expect(this.problems, JSON.stringify(this.problems, null, 1)).toEqual([]);

  async stop(): Promise<void> {
    await this.browser?.close();
    await this.station?.stop();
    await this.sim?.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
}
