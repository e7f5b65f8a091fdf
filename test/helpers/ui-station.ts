/**
 * A running station for the browser tests: the PLC simulator's line (`uiLine`: 8 parts/s, waiting for
 * `sim.startLine()`) triggers the station's replay camera with each part's id; ONNX model, images of
 * rejects, HTTP server, a QA account.
 */
import { join } from 'node:path';
import type { DeepPartial, StationConfig } from '../../inspector/station/config.js';
import { ReviewStore } from '../../inspector/review/review-store.js';
import { reviewDbPathFor } from '../../inspector/review/review-db.js';
import type { Role } from '../../inspector/review/review-db.js';
import type { LineOptions } from '../../inspector/plc/plc-simulator.js';
import { lineOptions, triggeredCamera } from './line.js';

export const UI_REPLAY_FOLDER = 'test-images/test/parts';

/** The simulator's line for the browser tests (start it with sim.startLine() once the station runs). */
export function uiLine(triggerPort: number): LineOptions {
  return lineOptions({ rate: 8, triggerPort, folder: UI_REPLAY_FOLDER });
}

export function uiStationConfig(o: { work: string; plcPort: number; triggerPort: number; httpPort: number }): DeepPartial<StationConfig> {
  return {
    camera: triggeredCamera({ triggerPort: o.triggerPort, folder: UI_REPLAY_FOLDER }),
    model: { providers: ['cpu'], intraOpNumThreads: 1 },
    plc: { endpoint: `opc.tcp://127.0.0.1:${o.plcPort}`, certificateFolder: join(o.work, 'pki-station'), security: { mode: 'None' } },
    results: { dbPath: join(o.work, 'results.sqlite'), imagesDir: o.work, saveImages: 'rejects', pngCompressionLevel: 1 },
    // plain HTTP in the browser tests, said explicitly (as PLC security None is): HTTPS is test/https.test.ts's
    server: { enabled: true, host: '127.0.0.1', port: o.httpPort, tls: { mode: 'off' } },
  };
}

/** Create an account in the station's review database (the server helper's Accounts), as an admin would. */
export async function createUiUser(o: { work: string; base: string; username: string; password: string; role: Role }): Promise<void> {
  const review = new ReviewStore({ reviewDbPath: reviewDbPathFor(join(o.work, 'results.sqlite')) });
  try {
    if (!review.accounts.byName(o.username)) await review.accounts.create(o.username, o.password, o.role);
  } finally {
    review.close();
  }
}

/** Poll an async condition until it holds; the error names what was awaited. */
export async function waitFor(cond: () => Promise<boolean> | boolean, o: { timeoutMs: number; what: string; everyMs?: number }): Promise<void> {
  const end = Date.now() + o.timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${o.what}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 200));
  }
}
