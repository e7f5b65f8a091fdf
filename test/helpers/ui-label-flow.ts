/**
 * Labelling the first reject of the review queue by keyboard and mouse, as a QA reviewer
 * does it (test/ui-live-label.browser.test.ts; test/ui-queue-export-calibration.browser.test.ts
 * starts from a part labelled this way): open the queue and the reject, pick a class with a
 * number key, draw a box with the mouse; the server has both, the box where it was drawn.
 */
import { expect } from 'vitest';
import type { UiBrowserSession } from './ui-browser-session.js';

/** The labelled part, and the box drawn on it in image pixels. */
export interface LabelledReject {
  labelled: { runId: string; seq: number };
  drawn: { x: number; y: number; w: number; h: number };
}

/** From a page logged in as a reviewer; ends on the part's label page, nothing selected. */
export async function labelFirstReject(ui: UiBrowserSession): Promise<LabelledReject> {
  const { page, base, shot, noProblems } = ui;
  const drawn = { x: 0, y: 0, w: 0, h: 0 };
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
  const labelled = { runId: decodeURIComponent(m[1]!), seq: Number(m[2]) };
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
  return { labelled, drawn };
}
