/**
 * The QA UI in a real browser against a real running station (the set-up:
 * helpers/ui-browser-session.ts), from a reviewer logged in who has labelled a reject
 * with a box (helpers/ui-label-flow.ts): the stats and models pages; COCO exported from
 * the review page with the box in the file, and the export downloaded as one zip and
 * opened; the review queue's bulk marks and labels by keyboard, its thumbnail grid and
 * time range, Label in the navigation bar; the calibration page as admin
 * (helpers/ui-calibration-flow.ts). Every console error, failed request and unexpected
 * HTTP >= 400 fails the test. Screenshots of each page go to artifacts/ui/. The live and
 * label pages: ui-live-label.browser.test.ts.
 */
import { describe, it, expect, beforeAll, beforeEach, afterAll, onTestFailed } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { readZip } from './helpers/read-zip.js';
import { calibrationRegistrationFlow, calibrationSetupFlow, type CalibrationFlowContext } from './helpers/ui-calibration-flow.js';
import { ADMIN, ART, logIn, QA, UiBrowserSession } from './helpers/ui-browser-session.js';
import { labelFirstReject, type LabelledReject } from './helpers/ui-label-flow.js';

describe('QA UI in chromium against a running station: queue, export, stats, models, calibration', () => {
  const ui = new UiBrowserSession('inspector-ui-');
  const { work, expected, shot, noProblems } = ui;
  let page: Page;
  let base = '';
  let drawn: LabelledReject['drawn'];
  let labelled: LabelledReject['labelled'];

  beforeAll(async () => {
    await ui.start();
    ({ page, base } = ui);
    await logIn(page, base, QA);
  }, 180_000);

  // the reject is labelled once, in the first test's set-up: labelling checks with expect.poll,
  // which runs only inside a test (not in beforeAll)
  let labelling: Promise<LabelledReject> | undefined;
  beforeEach(async () => { ({ labelled, drawn } = await (labelling ??= labelFirstReject(ui))); });

  afterAll(() => ui.stop());

  const calibrationContext = (): CalibrationFlowContext => ({ page, base, work, art: ART, admin: ADMIN, labelled, expected, shot, noProblems });

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
