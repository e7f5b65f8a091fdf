/**
 * A results database filled through the real ResultStore (store worker, SQLite
 * WAL), real PNGs in an images folder, and an app built on them with a few
 * accounts and their bearer tokens. Shared by the review API and role tests.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { logger } from '../../inspector/core/logger.js';
import { ResultStore, type StoreRecord } from '../../inspector/results/result-store.js';
import { buildApp, type AppOptions } from '../../inspector/server/app.js';
import type { Role } from '../../inspector/review/review-db.js';

export const RUN = 'run-1';
export const THRESHOLD = 0.5;
export const DOUBT = 0.15;
export const HOUR10 = Date.UTC(2026, 0, 5, 10, 0, 0);
export const HOUR11 = HOUR10 + 3_600_000;

export interface Part { seq: number; at: number; verdict: 'pass' | 'reject'; score: number; ms: number; version: string; code: 0 | 1 }

/** Hour 10: model 1.0.0; hour 11: model 1.1.0. Rejects: score >= 0.5. */
export const PARTS: Part[] = [
  [1, HOUR10 + 60_000, 0.9, 3.1], [2, HOUR10 + 120_000, 0.8, 2.2], [3, HOUR10 + 180_000, 0.45, 1.4],
  [4, HOUR10 + 240_000, 0.1, 1.1], [5, HOUR10 + 300_000, 0.2, 4.7], [6, HOUR10 + 360_000, 0.95, 2.9],
  [7, HOUR11 + 60_000, 0.7, 8.5], [8, HOUR11 + 120_000, 0.4, 2.0], [9, HOUR11 + 180_000, 0.05, 0.9],
  [10, HOUR11 + 240_000, 0.3, 1.7], [11, HOUR11 + 300_000, 0.36, 3.3],
].map(([seq, at, score, ms]) => ({
  // capture times are fractional ms in real rows (Date.now() - frameToVerdictMs)
  seq: seq!, at: at! + ms! / 7, score: score!, ms: ms!, verdict: score! >= THRESHOLD ? 'reject' : 'pass', code: score! >= THRESHOLD ? 1 : 0,
  version: at! >= HOUR11 ? '1.1.0' : '1.0.0',
}));

export const ROLES_USERS: Record<string, Role> = { admin1: 'admin', qa1: 'qa', qa2: 'qa', ml1: 'ml', op1: 'operator' };

export interface Fixture {
  dir: string; app: FastifyInstance; tokens: Record<string, string>;
  auth(user: string): { authorization: string };
  close(): Promise<void>;
}

export async function reviewFixture(extra: Partial<AppOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'inspector-review-'));
  const resultsDbPath = join(dir, 'results.sqlite');
  const imagesDir = join(dir, 'var');
  mkdirSync(join(imagesDir, 'images', RUN, 'reject'), { recursive: true });
  const store = await ResultStore.open({ dbPath: resultsDbPath, logger: logger.child({ test: 'review' }) });
  store.startRun(RUN, {});
  for (const p of PARTS) {
    const rec: StoreRecord = {
      runId: RUN, seq: p.seq, capturedAtMs: p.at, verdict: p.verdict, code: p.code, score: p.score,
      modelName: 'default', modelVersion: p.version, provider: 'cpu',
      timings: { dispatchMs: 0.1, inferenceMs: p.ms / 2, frameToVerdictMs: p.ms, plcWriteMs: null },
      plcStatus: 'pending', sourceRef: null, imagePath: null, anomalyMapPath: null,
    };
    store.add(rec);
  }
  // part 1 has a real image and map; part 2 a path that tries to leave the images folder
  const gray = Buffer.alloc(64 * 48);
  for (let i = 0; i < gray.length; i++) gray[i] = i % 256;
  await sharp(gray, { raw: { width: 64, height: 48, channels: 1 } }).png().toFile(join(imagesDir, 'images', RUN, 'reject', '1.png'));
  await sharp(gray.subarray(0, 16 * 12), { raw: { width: 16, height: 12, channels: 1 } }).png().toFile(join(imagesDir, 'images', RUN, 'reject', '1.map.png'));
  store.update(1, RUN, { imagePath: `images/${RUN}/reject/1.png`, anomalyMapPath: `images/${RUN}/reject/1.map.png` });
  store.update(2, RUN, { imagePath: '../../../etc/passwd', anomalyMapPath: null });
  await store.close();

  const app = await buildApp({
    view: { health: async () => { throw new Error('no station'); }, metrics: async () => ({ contentType: 'text/plain', body: '' }) },
    logger: false, reviewDbPath: join(dir, 'review.sqlite'), resultsDbPath, imagesDir, doubtMargin: DOUBT,
    model: { name: 'default', version: '1.1.0', threshold: THRESHOLD, outputs: { kind: 'anomaly_map', defectClasses: ['scratch', 'dent'] } },
    stationClasses: ['stain'], uiDir: join(dir, 'no-ui'),
    ...extra,
  });
  const tokens: Record<string, string> = {};
  for (const [name, role] of Object.entries(ROLES_USERS)) {
    const a = await app.review.accounts.create(name, `${name}-password`, role);
    tokens[name] = app.review.accounts.createToken(a.id, 'test').token;
  }
  return {
    dir, app, tokens,
    auth: (user) => ({ authorization: `Bearer ${tokens[user]}` }),
    close: async () => { await app.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}
