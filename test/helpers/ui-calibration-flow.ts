/**
 * The calibration page's browser flows of test/ui-queue-export-calibration.browser.test.ts, against its running
 * station: steps 1–3 as admin (the live checks, an ROI drawn on the live frame, stored
 * and kept across a reload, a plane from four clicked points, the label page in mm) and
 * step 4 (the coded refusal for a model without a golden reference, then a taught
 * package registering the live frame with its overlay).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { createUiUser } from './ui-station.js';

/**
 * Wait until the image at `selector` has loaded. Polled with locator.evaluate (run over the
 * DevTools protocol): page.waitForFunction compiles its predicate inside the page, which the
 * UI's Content-Security-Policy (no 'unsafe-eval') refuses, as it should.
 */
async function imageLoaded(page: Page, selector: string, timeout = 30_000): Promise<void> {
  await expect.poll(() => page.locator(selector).evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth).catch(() => 0), { timeout, interval: 100 })
    .toBeGreaterThan(0);
}

export interface CalibrationFlowContext {
  page: Page;
  base: string;
  work: string;
  /** artifacts folder for screenshots */
  art: string;
  admin: { username: string; password: string };
  /** the part labelled earlier in the run (its box is shown in mm once a plane exists) */
  labelled: { runId: string; seq: number };
  /** HTTP >= 400 answers the run expects: [method, path regex, status] */
  expected: Array<[string, RegExp, number]>;
  shot: (name: string) => Promise<unknown>;
  noProblems: () => void;
}

/** the calibration page has mounted, run its effects and shown the stored version */
const calibrationLoaded = (page: Page) =>
  expect.poll(() => page.getByTestId('calib-stepper').innerText(), { timeout: 10_000 }).toMatch(/version \d+|not calibrated/);

/** Steps 1–3 as admin; `progress.step` says where it is (printed by the caller if it fails). */
export async function calibrationSetupFlow(ctx: CalibrationFlowContext, progress: { step: string }): Promise<void> {
  const { page, base, work, labelled, shot, noProblems } = ctx;
  const ADMIN = ctx.admin;
  progress.step = 'log in as admin';
  await createUiUser({ work, base, ...ADMIN, role: 'admin' });
  await page.getByRole('button', { name: 'log out' }).click();
  await page.getByLabel('User').fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('nav-live').waitFor();
  progress.step = 'calibration page and live checks';
  await page.keyboard.press('Shift+C');
  await page.getByTestId('calibration-page').waitFor();
  await calibrationLoaded(page);
  await page.getByTestId('calib-checks').waitFor({ timeout: 10_000 }); // live focus/exposure figures came back
  expect(await page.getByTestId('calib-checks').innerText()).toMatch(/sharpness\s+\d+/);

  progress.step = 'ROI drawn on the live frame';
  // step 3, drag a rectangle on the live frame (frame px = screen offset × 1280 / shown width)
  await page.keyboard.press('3');
  const ov = page.getByTestId('calib-overlay');
  await imageLoaded(page, '[data-testid=calib-frame] img');
  const b = (await ov.boundingBox())!;
  const from = { x: b.x + b.width * 0.2, y: b.y + b.height * 0.25 };
  const to = { x: b.x + b.width * 0.7, y: b.y + b.height * 0.8 };
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 4 });
  await page.mouse.move(to.x, to.y, { steps: 4 });
  await page.mouse.up();
  const want = { x: 0.2 * 1280, y: 0.25 * 1024, width: 0.5 * 1280, height: 0.55 * 1024 };
  await page.getByTestId('roi-draft').waitFor();
  await page.keyboard.press('s');
  await expect.poll(() => page.getByTestId('roi-stored').innerText(), { timeout: 10_000 }).toMatch(/^stored:/);
  const cur = async () => ((await (await page.request.get(`${base}/api/calibration`)).json()) as { doc: { roi: Record<string, number>; plane?: { mmPerPx: number } } }).doc;
  const roi = (await cur()).roi;
  for (const k of ['x', 'y', 'width', 'height'] as const) expect(Math.abs(roi[k]! - want[k]), k).toBeLessThan(4);

  progress.step = 'reload and stored ROI';
  // reload: still there, drawn as the stored ROI
  await page.reload();
  await page.getByTestId('calibration-page').waitFor();
  await calibrationLoaded(page); // a fresh CI clone once pressed '3' here before the page was listening
  await page.keyboard.press('3');
  await expect.poll(() => page.getByTestId('roi-stored').innerText()).toBe(`stored: ${roi.x}, ${roi.y}, ${roi.width}×${roi.height} px`);
  expect(await page.locator('[data-testid=calib-overlay] .roi-stored rect').count()).toBe(1);
  await page.getByTestId('calib-checks').waitFor({ timeout: 10_000 });
  await page.waitForTimeout(1200); // a fresh frame behind the overlay
  await shot('calibration');

  progress.step = 'plane from four points';
  // step 2: four clicked corners of a 100 x 80 mm rectangle → mm/px
  await page.keyboard.press('2');
  const b2 = (await page.getByTestId('calib-overlay').boundingBox())!;
  for (const [fx, fy] of [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]] as const) await page.mouse.click(b2.x + b2.width * fx, b2.y + b2.height * fy);
  await page.getByTestId('calib-stepper').waitFor();
  await page.locator('label:has-text("width mm") input').fill('100');
  await page.locator('label:has-text("height mm") input').fill('80');
  await page.getByTestId('plane-fit').click();
  await page.getByTestId('plane-facts').waitFor({ timeout: 10_000 });
  const plane = (await cur()).plane!;
  expect(plane.mmPerPx).toBeGreaterThan(0);
  // 0.8 of 1280 px is 100 mm, 0.8 of 1024 px is 80 mm: 0.0977 mm/px both ways
  expect(Math.abs(plane.mmPerPx - 100 / (0.8 * 1280))).toBeLessThan(0.003);
  await shot('calibration-plane');

  progress.step = 'label page in mm';
  // the label page shows the drawn box in mm too
  await page.goto(`${base}/#/label/${encodeURIComponent(labelled.runId)}/${labelled.seq}`);
  await page.getByTestId('region-mm').first().waitFor({ timeout: 10_000 });
  expect(await page.getByTestId('region-mm').first().innerText()).toMatch(/^[\d.]+×[\d.]+ mm, [\d.]+ mm²$/);
  noProblems();
}

/** Step 4: registration to the golden reference. */
export async function calibrationRegistrationFlow(ctx: CalibrationFlowContext): Promise<void> {
  const { page, base, work, expected, noProblems } = ctx;
  // taught in a child process (async: the station's part loop runs on this thread): this process must not
  // load OpenCV itself, the server worker did for the plane fit
  const pkgDir = join(work, 'taught', 'bracket-taught', '1.0.0');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/helpers/teach-fixture-package.ts', pkgDir, '8'], { timeout: 120_000 });
  await page.goto(`${base}/#/calibration`);
  await page.getByTestId('calibration-page').waitFor();
  await calibrationLoaded(page);
  await page.getByTestId('calib-stepper').locator('li', { hasText: 'Golden reference' }).click();
  await page.getByTestId('calib-registration').waitFor();

  // the live (default) model has no registration: the page shows the coded refusal
  expected.push(['POST', /^\/api\/calibration\/reference\/check$/, 409]);
  await page.keyboard.press('c');
  await expect.poll(() => page.getByTestId('reg-error').innerText(), { timeout: 10_000 }).toMatch(/^INSPECTOR_CALIBRATION_NO_REFERENCE: .*no registration/);
  expected.pop();

  // the taught package's reference: the live frame (a replayed good or defective part) registers
  await page.getByTestId('reg-package').fill(pkgDir);
  await page.getByTestId('reg-check').click();
  await page.getByTestId('reg-facts').waitFor({ timeout: 20_000 });
  await imageLoaded(page, '[data-testid=reg-overlay]', 10_000);
  const natural = await page.getByTestId('reg-overlay').evaluate((img) => [(img as unknown as { naturalWidth: number }).naturalWidth, (img as unknown as { naturalHeight: number }).naturalHeight]);
  expect(natural[0]).toBe(2 * 320 + 4); // two 320x256 panels side by side
  expect(natural[1]).toBeGreaterThan(256);
  expect(await page.getByTestId('reg-badge').textContent()).toBe('registered'); // (shown upper-case by CSS)
  expect(await page.getByTestId('reg-shift').innerText()).toMatch(/^[+−][\d.]+, [+−][\d.]+ px \(limit ±26\)/);
  expect(await page.getByTestId('reg-shift-mm').innerText()).toMatch(/^[+−][\d.]+, [+−][\d.]+ mm$/); // the plane fitted above
  expect(await page.getByTestId('reg-rotation').innerText()).toMatch(/^[+−][\d.]+° \(limit ±6°\)$/);
  const q = /^([\d.]+) ≥ ([\d.]+) minimum$/.exec(await page.getByTestId('reg-quality').innerText());
  expect(q, 'quality against the minimum').not.toBeNull();
  expect(Number(q![1])).toBeGreaterThanOrEqual(Number(q![2]));
  await page.screenshot({ path: join(ctx.art, 'calibration-registration.png'), fullPage: true });
  noProblems();
}
