/**
 * The QA UI in a real browser (Debian's chromium, headless, driven by
 * playwright-core) against a real running station: the PLC simulator's line
 * triggering the replay camera, ONNX model,
 * OPC UA PLC simulator, SQLite results, images of rejects saved, the Fastify
 * server in its worker serving ui/dist and the API.
 *
 * Flow: log in; the live page with its status pills and the Station vs PLC
 * table; open the review queue; open a reject; pick a class with a
 * number key and draw a box with the mouse; reload and see both kept; export
 * COCO and find the box in the file, download the export as one zip and open it;
 * undo / redo on the label page (the server follows), the class tag on the box,
 * Label in the navigation bar, the review queue's thumbnail grid and its time
 * range. Every console error, failed request and
 * unexpected HTTP >= 400 fails the test. Screenshots of each page go to
 * artifacts/ui/.
 */
import { describe, it, expect, beforeAll, afterAll, onTestFailed } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { logger } from '../inspector/core/logger.js';
import { freePort } from '../inspector/core/free-port.js';
import { resolveConfig } from '../inspector/station/config.js';
import { Station } from '../inspector/station/station.js';
import { PlcSimulator } from '../inspector/plc/plc-simulator.js';
import { buildUi } from '../scripts/build-ui.js';
import { createUiUser, uiLine, uiStationConfig, waitFor } from './helpers/ui-station.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readZip } from './helpers/read-zip.js';
import { calibrationRegistrationFlow, calibrationSetupFlow, type CalibrationFlowContext } from './helpers/ui-calibration-flow.js';

const ART = 'artifacts/ui';
const QA = { username: 'qa-anna', password: 'correct-horse-42' };
const ADMIN = { username: 'admin-ida', password: 'staple-battery-77' };

interface Problem { kind: string; text: string }

describe('QA UI in chromium against a running station', () => {
  const work = mkdtempSync(join(tmpdir(), 'inspector-ui-'));
  let sim: PlcSimulator;
  let station: Station;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base = '';
  const problems: Problem[] = [];
  /** HTTP >= 400 answers the test expects: [method, path regex, status] */
  const expected: Array<[string, RegExp, number]> = [
    ['GET', /^\/api\/auth\/me$/, 401], // before logging in
  ];
  const drawn = { x: 0, y: 0, w: 0, h: 0 };
  let labelled = { runId: '', seq: 0 };

  beforeAll(async () => {
    mkdirSync(ART, { recursive: true });
    await buildUi();
    const [plcPort, triggerPort, httpPort] = [await freePort(), await freePort('udp'), await freePort()];
    sim = new PlcSimulator({ port: plcPort, gateWindowMs: 200, certificateFolder: join(work, 'pki-plc'), logger, line: uiLine(triggerPort) });
    await sim.start();
    station = await Station.start(resolveConfig({ ...uiStationConfig({ work, plcPort, triggerPort, httpPort }), calibration: { dir: join(work, 'calibration') } }), logger);
    sim.startLine(); // the line's clock triggers the station's camera with each part's id
    base = `http://127.0.0.1:${httpPort}`;
    await createUiUser({ work, base, ...QA, role: 'qa' });
    // let parts flow until a few rejects have their images on disk
    await waitFor(async () => {
      const rows = await station.store.query({ runId: station.runId, verdict: 'reject', limit: 50 });
      return rows.filter((r) => r.image_path && r.anomaly_map_path).length >= 3;
    }, { timeoutMs: 90_000, what: 'three rejects with images' });

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    page = await context.newPage();
    watch(page);
  }, 180_000);

  function watch(page: Page): void {
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
  }

  afterAll(async () => {
    await browser?.close();
    await station?.stop();
    await sim?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const calibrationContext = (): CalibrationFlowContext => ({ page, base, work, art: ART, admin: ADMIN, labelled, expected, shot, noProblems });
  const shot = (name: string) => page.screenshot({ path: join(ART, `${name}.png`) });
  const noProblems = () => expect(problems, JSON.stringify(problems, null, 1)).toEqual([]);

  it('logs in and shows the live line with status and KPIs', async () => {
    await page.goto(base + '/');
    await page.getByLabel('User').fill(QA.username);
    await page.getByLabel('Password').fill(QA.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('nav-live').waitFor();
    await expect.poll(() => page.getByTestId('status-camera').getAttribute('class'), { timeout: 15_000 }).toContain('pill-up');
    await expect.poll(() => page.getByTestId('status-plc').getAttribute('class'), { timeout: 15_000 }).toContain('pill-up');
    await expect.poll(async () => (await page.getByTestId('kpi-rate').innerText()).split('\n')[0], { timeout: 15_000 }).not.toBe('–');
    await page.getByTestId('live-card').first().waitFor({ timeout: 15_000 });
    // Station vs PLC: the PLC's outcome counters (read back) beside the station's
    const table = page.getByTestId('line-table');
    await expect.poll(() => table.getByTestId('line-plc-parts').innerText(), { timeout: 15_000 }).toMatch(/^\d+$/);
    expect(Number(await table.getByTestId('line-station-inspected').innerText())).toBeGreaterThan(0);
    for (const id of ['line-station-not-inspected', 'line-station-sync-errors', 'line-station-mismatches', 'line-plc-accepted',
      'line-plc-rejected', 'line-plc-timeout', 'line-plc-late', 'line-plc-sequence-errors', 'line-plc-refused']) {
      expect(await table.getByTestId(id).innerText(), id).toMatch(/^\d+$/);
    }
    expect(Number(await table.getByTestId('line-plc-rejected').innerText())).toBeGreaterThan(0); // rejects with images were awaited
    await page.waitForTimeout(800); // let the thumbnails draw
    await shot('live');
    expect(existsSync(join(ART, 'live.png'))).toBe(true);
    noProblems();
  });

  it('the PLC pill is amber while PART_SYNC is raised, and the table shows the refusals (live feed mocked)', async () => {
    // the station's own health, as PART_SYNC makes it: the link is up, the PLC refused two results
    const real = await (await page.request.get(`${base}/health`)).json() as {
      plc: { state: string; detail: string; line: { plc: Record<string, number> | null } }; alarms: string[]; status: string };
    expect(real.plc.line).toBeDefined();
    const report = {
      ...real, status: 'degraded', alarms: ['PART_SYNC: the PLC refused 2 result(s): wrong epoch or a part it did not trigger'],
      plc: { ...real.plc, state: 'degraded', detail: 'connected, part ids out of sync (PART_SYNC)',
        line: { ...real.plc.line, plc: { ...(real.plc.line.plc ?? { epoch: 1, lastPartId: 0, parts: 0, accepted: 0, rejected: 0, timeout: 0, late: 0, sequenceErrors: 0, duplicates: 0 }), refused: 2 } } },
    };
    const other = await context.newPage();
    watch(other);
    await other.routeWebSocket(/\/api\/live$/, (ws) => { // no server behind it: only this health report
      const send = () => ws.send(JSON.stringify({ type: 'health', report }));
      send();
      const t = setInterval(send, 500);
      ws.onClose(() => clearInterval(t));
    });
    try {
      await other.setViewportSize({ width: 1366, height: 768 });
      await other.goto(base + '/');
      await expect.poll(() => other.getByTestId('status-plc').getAttribute('class'), { timeout: 15_000 }).toContain('pill-degraded');
      expect(await other.getByTestId('status-plc').innerText()).toMatch(/out of sync/);
      const refused = other.getByTestId('line-table').getByTestId('line-plc-refused');
      expect(await refused.innerText()).toBe('2');
      expect(await refused.getAttribute('class')).toContain('warn');
      expect(await other.getByTestId('alarm').first().innerText()).toMatch(/PART_SYNC/);
      await other.screenshot({ path: join(ART, 'live-part-sync.png') });
      expect(existsSync(join(ART, 'live-part-sync.png'))).toBe(true);
      noProblems();
    } finally {
      await other.close();
    }
  });

  it('opens the review queue and the first reject, labels it by keyboard and mouse', async () => {
    await page.keyboard.press('Shift+R');
    await page.getByTestId('queue-row').first().waitFor();
    const firstReject = page.locator('[data-testid=queue-row][data-verdict=reject]').first();
    expect((await firstReject.getByTestId('model-class').innerText()).trim()).toBe('model: defect'); // the model's class in the list
    await firstReject.click();
    await page.waitForTimeout(500);
    await shot('review');
    await page.keyboard.press('Enter');
    await page.getByTestId('class-choices').waitFor();
    const m = /#\/label\/([^/]+)\/(\d+)/.exec(page.url())!;
    labelled = { runId: decodeURIComponent(m[1]!), seq: Number(m[2]) };
    // the model's class of the verdict, beside it on the label page (the one-class default package: its class)
    const apiPart = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as { model: { defectClass: string | null } };
    expect(apiPart.model.defectClass).toBe('defect');
    expect((await page.getByTestId('model-class').innerText()).trim()).toBe('model: defect');

    const classes = await page.getByTestId('class-choices').locator('button').allInnerTexts();
    expect(classes.length).toBeGreaterThan(0);
    await page.keyboard.press('1');
    const firstClass = await page.getByTestId('class-choices').locator('button').first().getAttribute('data-value');
    await expect.poll(() => page.getByTestId('class-choices').locator('button.on').getAttribute('data-value')).toBe(firstClass);

    // draw a box: b, then drag on the canvas
    const canvas = page.getByTestId('viewer-canvas');
    await page.waitForTimeout(500); // the image is fitted on load
    const box = (await canvas.boundingBox())!;
    const from = { x: box.x + box.width * 0.35, y: box.y + box.height * 0.35 };
    const to = { x: box.x + box.width * 0.55, y: box.y + box.height * 0.6 };
    await page.keyboard.press('b');
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 4 });
    await page.mouse.move(to.x, to.y, { steps: 4 });
    await page.mouse.up();
    // where that is in image pixels: the viewer fits 1280x1024 into the canvas at 98 %, centred
    const scale = Math.min(box.width / 1280, box.height / 1024) * 0.98;
    const ox = (box.width - 1280 * scale) / 2, oy = (box.height - 1024 * scale) / 2;
    drawn.x = (from.x - box.x - ox) / scale; drawn.y = (from.y - box.y - oy) / scale;
    drawn.w = (to.x - from.x) / scale; drawn.h = (to.y - from.y) / scale;

    await expect.poll(() => page.getByTestId('region-list').locator('li').count()).toBe(1);
    await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
    await page.keyboard.press('Escape'); // deselect, so the screenshot shows the box as drawn
    await shot('label');

    // the server has it, as drawn
    const part = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as {
      label: { verdict: string; defectClass: string; regions: Array<{ kind: string; x: number; y: number; w: number; h: number }> } };
    expect(part.label.verdict).toBe('true_defect');
    expect(part.label.defectClass).toBe(firstClass);
    expect(part.label.regions).toHaveLength(1);
    const r = part.label.regions[0]!;
    expect(r.kind).toBe('box');
    expect(Math.abs(r.x - drawn.x)).toBeLessThan(3);
    expect(Math.abs(r.y - drawn.y)).toBeLessThan(3);
    expect(Math.abs(r.w - drawn.w)).toBeLessThan(3);
    expect(Math.abs(r.h - drawn.h)).toBeLessThan(3);
    noProblems();
  });

  it('undoes and redoes edits (Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y), the server following; the box carries its class tag', async () => {
    const partUrl = `${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`;
    type Reg = { id: string; kind: string; x: number; y: number; w: number; h: number };
    const server = async () => ((await (await page.request.get(partUrl)).json()) as { label: { verdict: string; defectClass: string | null; regions: Reg[] } }).label;
    const firstClass = await page.getByTestId('class-choices').locator('button').first().getAttribute('data-value');
    // Label is in the navigation bar, active here; the class picker shows the label's class
    expect(await page.getByTestId('nav-label').getAttribute('class')).toContain('active');
    expect(await page.getByTestId('current-class').inputValue()).toBe(firstClass);
    // the drawn box carries its class name, over the canvas, at the box's top-left corner
    const tag = page.getByTestId('region-tag');
    await expect.poll(() => tag.count()).toBe(1);
    expect(await tag.innerText()).toBe(firstClass);
    expect(await tag.isVisible()).toBe(true);
    const canvas = (await page.getByTestId('viewer-canvas').boundingBox())!;
    const scale = Math.min(canvas.width / 1280, canvas.height / 1024) * 0.98;
    const tagBox = (await tag.boundingBox())!;
    expect(Math.abs(tagBox.x - (canvas.x + (canvas.width - 1280 * scale) / 2 + drawn.x * scale))).toBeLessThan(4);
    expect(Math.abs(tagBox.y + tagBox.height - (canvas.y + (canvas.height - 1024 * scale) / 2 + drawn.y * scale))).toBeLessThan(4);
    const box0 = (await server()).regions[0]!;

    await page.keyboard.press('Control+z'); // takes the box back
    await expect.poll(async () => (await server()).regions.length, { timeout: 10_000 }).toBe(0);
    expect(await page.getByTestId('region-list').locator('li').count()).toBe(0);
    expect(await tag.count()).toBe(0);
    expect((await server()).defectClass).toBe(firstClass); // the class was an earlier edit: it stays
    await page.keyboard.press('Control+Shift+Z'); // and brings it again, the same region
    await expect.poll(async () => (await server()).regions, { timeout: 10_000 }).toEqual([box0]);
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await server()).regions.length, { timeout: 10_000 }).toBe(0);
    await page.keyboard.press('Control+y');
    await expect.poll(async () => (await server()).regions, { timeout: 10_000 }).toEqual([box0]);
    // a verdict is an edit too
    await page.keyboard.press('u');
    await expect.poll(async () => (await server()).verdict, { timeout: 10_000 }).toBe('unsure');
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await server()).verdict, { timeout: 10_000 }).toBe('true_defect');
    await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
    expect(await page.getByTestId('redo').isEnabled()).toBe(true);
    expect(await tag.innerText()).toBe(firstClass);
    await shot('label-undo');
    noProblems();
  });

  it('keeps the label and the box across a reload', async () => {
    await page.reload();
    await page.getByTestId('class-choices').waitFor();
    await expect.poll(() => page.getByTestId('region-list').locator('li').count()).toBe(1);
    expect(await page.getByTestId('region-list').locator('li').first().getAttribute('data-kind')).toBe('box');
    expect(await page.getByTestId('class-choices').locator('button.on').count()).toBe(1);
    expect(await page.getByTestId('verdict-choices').locator('button.on').getAttribute('data-value')).toBe('true_defect');
    // labelling it counted as reviewing it, for this reviewer
    const part = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as { reviewed: boolean };
    expect(part.reviewed).toBe(true);
    noProblems();
  });

  it('keeps an edit made offline and sends it when the station answers again', async () => {
    await context.setOffline(true);
    await page.keyboard.press('u'); // verdict: unsure, while offline
    await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    const kept = await page.evaluate(() => Object.keys((globalThis as unknown as { localStorage: Record<string, string> }).localStorage).filter((k) => k.startsWith('inspector.label.')).length);
    expect(kept).toBe(1);
    await context.setOffline(false);
    await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('saved');
    const part = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as { label: { verdict: string; regions: unknown[] } };
    expect(part.label.verdict).toBe('unsure');
    expect(part.label.regions).toHaveLength(1);
    await page.keyboard.press('t'); // back to a true defect for the export
    await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
    // offline fetches fail by design in this test only
    for (let i = problems.length - 1; i >= 0; i--) if (problems[i]!.kind === 'requestfailed' && /ERR_INTERNET_DISCONNECTED/.test(problems[i]!.text)) problems.splice(i, 1);
    noProblems();
  });

  it('shows the stats and models pages', async () => {
    await page.keyboard.press('Shift+S');
    await page.getByTestId('chart-yield').waitFor();
    await page.waitForTimeout(800);
    await shot('stats');
    // the model registry's routes are another helper's: without them the page shows the live model only
    const registry = await page.request.get(`${base}/api/models`);
    if (registry.status() === 404) expected.push(['GET', /^\/api\/models$/, 404]);
    await page.keyboard.press('Shift+M');
    await page.getByTestId('live-model').waitFor();
    await expect.poll(() => page.getByTestId('live-model').innerText()).toMatch(/default@1\.0\.0[\s\S]*Threshold\s+0\.\d{3}/);
    if (registry.status() === 200) {
      await expect.poll(() => page.getByTestId('models-table').innerText()).toMatch(/default\s+1\.0\.0\s+live/i); // the state badge is upper-cased by CSS
    }
    await shot('models');
    noProblems();
  });

  it('exports COCO from the review page and the box is in the file', async () => {
    await page.keyboard.press('Shift+R');
    await page.getByTestId('queue-row').first().waitFor();
    await page.keyboard.press('e');
    await page.getByTestId('export-dialog').waitFor();
    await page.getByLabel('COCO (boxes + polygons)').check();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('export-job').getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
    await shot('export');
    const href = await page.getByTestId('export-file').getAttribute('href');
    expect(href).toMatch(/annotations\.json$/);
    const res = await page.request.get(base + href!);
    expect(res.status()).toBe(200);
    const coco = await res.json() as { images: Array<{ id: number; file_name: string }>; annotations: Array<{ image_id: number; bbox: number[] }> };
    const hit = coco.annotations.find((a) => Math.abs(a.bbox[0]! - drawn.x) < 3 && Math.abs(a.bbox[1]! - drawn.y) < 3
      && Math.abs(a.bbox[2]! - drawn.w) < 3 && Math.abs(a.bbox[3]! - drawn.h) < 3);
    expect(hit, `box ${JSON.stringify(drawn)} in ${JSON.stringify(coco.annotations.map((a) => a.bbox))}`).toBeDefined();

    // the whole export as one archive: a real browser download, opened and checked
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-download').click()]);
    const jobId = (await page.getByTestId('export-job').locator('b').innerText()).trim();
    expect(download.suggestedFilename()).toBe(`${jobId}-coco.zip`);
    const zipPath = join(work, download.suggestedFilename());
    await download.saveAs(zipPath);
    const entries = readZip(readFileSync(zipPath));
    const top = `${jobId}-coco/`;
    expect([...entries.keys()].every((k) => k.startsWith(top))).toBe(true);
    const manifest = JSON.parse(entries.get(`${top}manifest.json`)!.toString()) as {
      format: string; items: Array<{ runId: string; seq: number }>; files: Array<{ path: string; bytes: number; sha256: string }> };
    expect(manifest.format).toBe('coco');
    expect(manifest.items.some((i) => i.runId === labelled.runId && i.seq === labelled.seq)).toBe(true);
    const pngs = [...entries.keys()].filter((k) => k.endsWith('.png'));
    expect(pngs.length).toBe(manifest.items.length);
    for (const f of manifest.files) { // every listed file, whole
      const b = entries.get(top + f.path);
      expect(b?.length, f.path).toBe(f.bytes);
      expect(createHash('sha256').update(b!).digest('hex'), f.path).toBe(f.sha256);
    }
    expect(entries.get(`${top}annotations.json`)!.equals(Buffer.from(await res.body()))).toBe(true);
    const png = entries.get(pngs[0]!)!;
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 1024]); // the station's frame, not re-encoded
    await page.keyboard.press('Escape');
    noProblems();
  });

  it('marks reviewed and labels false rejects in bulk by keyboard', async () => {
    await page.getByTestId('export-dialog').waitFor({ state: 'detached' });
    const rows = page.locator('[data-testid=queue-row][data-verdict=reject]');
    const seqs = [Number(await rows.nth(0).getAttribute('data-seq')), Number(await rows.nth(1).getAttribute('data-seq'))];
    await rows.nth(0).click();
    await page.keyboard.press('x'); // select, cursor moves down
    await page.keyboard.press('x');
    await page.keyboard.press('r');
    await expect.poll(() => page.getByTestId('review-message').innerText()).toBe('marked reviewed: 2 parts');
    await page.keyboard.press('f'); // the cursor row (selection was cleared)
    await expect.poll(() => page.getByTestId('review-message').innerText()).toBe('labelled false reject: 1 part');
    const get = async (seq: number) => (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${seq}`)).json() as Promise<{ reviewed: boolean; label: { verdict: string } | null }>;
    for (const seq of seqs) expect((await get(seq)).reviewed, `part ${seq}`).toBe(true);
    const cursorSeq = Number(await page.locator('[data-testid=queue-row].cursor').getAttribute('data-seq'));
    expect((await get(cursorSeq)).label?.verdict).toBe('false_reject');
    noProblems();
  });

  it('shows the queue as a thumbnail grid, usable by keyboard, with a time range filter; Label in the navigation opens the next part', async () => {
    await page.keyboard.press('v');
    const grid = page.getByTestId('queue-grid');
    await grid.waitFor();
    expect(page.url()).toContain('view=grid');
    const tiles = grid.getByTestId('grid-item');
    await expect.poll(() => tiles.count()).toBeGreaterThan(3);
    // the thumbnails are the parts' saved images, through the part image route (a part whose image was
    // dropped under load – counted by the writer – shows 'no image saved' instead: take the first that has one)
    const img = grid.locator('[data-testid=grid-item] img').first();
    expect(await img.getAttribute('src')).toMatch(/^\/api\/parts\/[^/]+\/\d+\/image$/);
    await expect.poll(() => img.evaluate((i) => { const im = i as unknown as { complete: boolean; naturalWidth: number }; return im.complete ? im.naturalWidth : 0; }), { timeout: 15_000 }).toBe(1280);
    const cursorSeq = () => grid.locator('.tile.cursor').getAttribute('data-seq');
    await tiles.first().click();
    await page.keyboard.press('ArrowRight');
    expect(await cursorSeq()).toBe(await tiles.nth(1).getAttribute('data-seq'));
    const cols = await grid.evaluate((g) => (globalThis as unknown as { getComputedStyle(e: unknown): { gridTemplateColumns: string } }).getComputedStyle(g).gridTemplateColumns.split(' ').length);
    expect(cols).toBeGreaterThan(1);
    if (await tiles.count() > 1 + cols) {
      await page.keyboard.press('ArrowDown'); // one row down
      expect(await cursorSeq()).toBe(await tiles.nth(1 + cols).getAttribute('data-seq'));
    }
    await page.waitForTimeout(500); // let the thumbnails draw
    await shot('review-grid');
    const opened = await cursorSeq();
    await page.keyboard.press('Enter');
    await page.getByTestId('class-choices').waitFor();
    expect(page.url()).toMatch(new RegExp(`#/label/[^/]+/${opened}\\?.*view=grid`));
    await page.keyboard.press('q'); // back to the same queue, still a grid
    await grid.waitFor();

    // time range: the last 15 minutes holds the parts of this run; a range in the future holds none
    const range = page.getByLabel('time range');
    await range.selectOption('15m');
    await expect.poll(() => tiles.count()).toBeGreaterThan(0);
    expect(page.url()).toContain('range=15m');
    await range.selectOption('custom');
    const local = (ms: number) => page.evaluate((t) => { const d = new Date(t); return new Date(t - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16); }, ms);
    await page.getByLabel('from', { exact: true }).fill(await local(Date.now() + 86_400_000));
    await expect.poll(() => tiles.count()).toBe(0);
    await page.getByText('Nothing in this queue').waitFor();
    // an inverted range is refused in the page, before it reaches the server
    await page.getByLabel('to', { exact: true }).fill(await local(Date.now() - 86_400_000));
    await expect.poll(() => page.getByTestId('review-message').innerText()).toMatch(/from.*must be before.*to/);
    await page.getByLabel('from', { exact: true }).fill(await local(Date.now() - 2 * 86_400_000));
    await page.getByLabel('to', { exact: true }).fill(await local(Date.now() + 86_400_000));
    await expect.poll(() => tiles.count()).toBeGreaterThan(0);
    await shot('review-grid-range');
    await range.selectOption('all');
    await page.keyboard.press('v'); // back to the table
    await page.getByTestId('queue-row').first().waitFor();

    // Label in the navigation bar: the next part of the queue that this reviewer has not reviewed
    await page.getByTestId('nav-label').click();
    await page.getByTestId('class-choices').waitFor();
    const m = /#\/label\/([^/]+)\/(\d+)/.exec(page.url())!;
    const next = await (await page.request.get(`${base}/api/parts/${m[1]}/${m[2]}`)).json() as { reviewed: boolean };
    expect(next.reviewed).toBe(false);
    expect(await page.getByTestId('nav-label').getAttribute('class')).toContain('active');
    noProblems();
  });

  it('two reviewers on the same part: the later edit is merged onto the newer revision, nothing is lost', async () => {
    const url = `${base}/#/label/${encodeURIComponent(labelled.runId)}/${labelled.seq}`;
    const other = await context.newPage();
    watch(other);
    expected.push(['PUT', /\/label$/, 409]); // the stale save is refused once, then re-sent on the new revision
    try {
      await page.goto(url);
      await other.goto(url);
      for (const p of [page, other]) await expect.poll(() => p.getByTestId('region-list').locator('li').count()).toBe(1);
      const before = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as { label: { revision: number } };
      await page.keyboard.press('u'); // first reviewer: unsure
      await expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
      await other.keyboard.press('f'); // second reviewer, still on the old revision: false reject
      await expect.poll(() => other.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
      const after = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`)).json() as { label: { revision: number; verdict: string; regions: unknown[] } };
      expect(after.label.verdict).toBe('false_reject');
      expect(after.label.regions).toHaveLength(1);
      expect(after.label.revision).toBe(before.label.revision + 2);
      const history = await (await page.request.get(`${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}/label/history`)).json() as Array<{ verdict: string }>;
      expect(history.slice(-2).map((h) => h.verdict)).toEqual(['unsure', 'false_reject']);
      noProblems();
    } finally {
      await other.close();
    }
  });

  it('edits regions with the mouse: polygon, resize by a handle, move, delete', async () => {
    const partUrl = `${base}/api/parts/${encodeURIComponent(labelled.runId)}/${labelled.seq}`;
    type Reg = { kind: string; x: number; y: number; w: number; h: number; points: number[][] };
    const regions = async () => ((await (await page.request.get(partUrl)).json()) as { label: { regions: Reg[] } }).label.regions;
    const saved = () => expect.poll(() => page.getByTestId('save-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('saved');
    const canvas = (await page.getByTestId('viewer-canvas').boundingBox())!;
    const scale = Math.min(canvas.width / 1280, canvas.height / 1024) * 0.98;
    const ox = (canvas.width - 1280 * scale) / 2, oy = (canvas.height - 1024 * scale) / 2;
    const at = (x: number, y: number) => ({ x: canvas.x + ox + x * scale, y: canvas.y + oy + y * scale });
    const drag = async (from: { x: number; y: number }, dx: number, dy: number) => {
      await page.mouse.move(from.x, from.y);
      await page.mouse.down();
      await page.mouse.move(from.x + dx / 2, from.y + dy / 2, { steps: 3 });
      await page.mouse.move(from.x + dx, from.y + dy, { steps: 3 });
      await page.mouse.up();
    };

    // a polygon: p, three clicks away from the box, Enter
    await page.keyboard.press('p');
    for (const [x, y] of [[100, 100], [220, 110], [150, 220]] as const) { const q = at(x, y); await page.mouse.click(q.x, q.y); }
    await page.keyboard.press('Enter');
    await saved();
    let r = await regions();
    expect(r.map((g) => g.kind).sort()).toEqual(['box', 'polygon']);
    const poly = r.find((g) => g.kind === 'polygon')!;
    expect(poly.points).toHaveLength(3);
    expect(Math.abs(poly.points[1]![0]! - 220)).toBeLessThan(2);
    // this page still showed its own older verdict (unsure): its region edit was merged onto the other
    // reviewer's newer revision, so their verdict (false reject) stands, and this page now shows it
    const label = ((await (await page.request.get(partUrl)).json()) as { label: { verdict: string } }).label;
    expect(label.verdict).toBe('false_reject');
    await expect.poll(() => page.getByTestId('verdict-choices').locator('button.on').getAttribute('data-value')).toBe('false_reject');

    // select the box, pull its bottom-right handle by 40 screen px each way
    const box0 = r.find((g) => g.kind === 'box')!;
    const mid = at(box0.x + box0.w / 2, box0.y + box0.h / 2);
    await page.mouse.click(mid.x, mid.y);
    await drag(at(box0.x + box0.w, box0.y + box0.h), 40, 40);
    await saved();
    const box1 = (await regions()).find((g) => g.kind === 'box')!;
    expect(Math.abs(box1.x - box0.x)).toBeLessThan(1);
    expect(Math.abs(box1.w - (box0.w + 40 / scale))).toBeLessThan(3);
    expect(Math.abs(box1.h - (box0.h + 40 / scale))).toBeLessThan(3);

    // move it left by 30 screen px
    await drag(at(box1.x + box1.w / 2, box1.y + box1.h / 2), -30, 0);
    await saved();
    const box2 = (await regions()).find((g) => g.kind === 'box')!;
    expect(Math.abs(box2.x - (box1.x - 30 / scale))).toBeLessThan(3);
    expect(Math.abs(box2.w - box1.w)).toBeLessThan(1);

    // select the polygon and delete it
    const c = at(157, 143);
    await page.mouse.click(c.x, c.y);
    await page.keyboard.press('Delete');
    await saved();
    r = await regions();
    expect(r.map((g) => g.kind)).toEqual(['box']);
    await shot('label-edited');
    noProblems();
  });

  it('calibration as admin: ROI drawn on the live frame is stored and kept; a plane gives mm on the label page', async () => {
    // a fresh CI clone once ran past 60 s somewhere in here: say where if it happens again
    const progress = { step: '' };
    onTestFailed(() => { console.log(`calibration browser test failed during: ${progress.step}`); });
    await calibrationSetupFlow(calibrationContext(), progress);
  }, 180_000);

  it('calibration step 4: the live model has no golden reference (coded); a taught package registers the live frame, overlay shown', async () => {
    await calibrationRegistrationFlow(calibrationContext());
  }, 180_000);
});
