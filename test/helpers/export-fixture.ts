/**
 * A small station history for export and retention tests: a results database
 * filled through ResultStore, images written by the real ImageWriter (sharp
 * PNG in its worker), labels in a real review database.
 */
import type Database from 'better-sqlite3';
import { logger } from '../../inspector/core/logger.js';
import type { ResultRecord, Verdict } from '../../inspector/core/types.js';
import { ResultStore } from '../../inspector/results/result-store.js';
import { ImageWriter, type ImageWritten } from '../../inspector/results/image-writer.js';
import type { Region, LabelVerdict } from '../../inspector/export/schema.js';
import { Labels } from '../../inspector/review/labels.js';
import { AuditLog } from '../../inspector/review/audit-log.js';

export const W = 160;
export const H = 120;

export interface PartSpec { seq: number; verdict: Verdict; capturedAtMs?: number; modelVersion?: string }

export function record(runId: string, p: PartSpec): ResultRecord & { runId: string } {
  return {
    runId, seq: p.seq, capturedAtMs: p.capturedAtMs ?? 1_700_000_000_000 + p.seq * 1000, verdict: p.verdict,
    code: p.verdict === 'reject' ? 1 : 0, score: p.verdict === 'reject' ? 0.9 : 0.1,
    modelName: 'default', modelVersion: p.modelVersion ?? '1.0.0', provider: 'cpu',
    timings: { dispatchMs: 0.2, inferenceMs: 3, frameToVerdictMs: 4, plcWriteMs: 0.4 },
    plcStatus: 'acked', sourceRef: null, imagePath: null, anomalyMapPath: null,
  };
}

/** A deterministic frame: a gradient with the seq stamped in. */
export function frame(seq: number): Uint8Array {
  const f = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) f[y * W + x] = (x * 3 + y * 5 + seq * 17) & 0xff;
  return f;
}

/** Store the parts and their images like the station does (add, then patch the image path on 'written'). */
export async function fillStation(opts: { dbPath: string; imagesDir: string; runId: string; parts: PartSpec[]; withMaps?: boolean }): Promise<void> {
  const log = logger.child({ test: 'export-fixture' });
  const store = await ResultStore.open({ dbPath: opts.dbPath, logger: log });
  const images = await ImageWriter.create({ dir: opts.imagesDir, width: W, height: H, slots: opts.parts.length, logger: log, nice: 0 });
  try {
    store.startRun(opts.runId, { test: true });
    const written = new Map<number, ImageWritten>();
    images.on('written', (w) => { written.set(w.seq, w); store.update(w.seq, w.runId, { imagePath: w.imagePath, anomalyMapPath: w.anomalyMapPath }); });
    images.on('failed', (f) => { throw new Error(`image ${f.seq} failed: ${f.error.message}`); });
    for (const p of opts.parts) {
      store.add(record(opts.runId, p));
      const map = opts.withMaps ? { data: new Float32Array(16 * 12).fill(p.seq / 10), width: 16, height: 12 } : undefined;
      // one slot per part: nothing is dropped
      if (images.offer({ seq: p.seq, runId: opts.runId, verdict: p.verdict, frame: frame(p.seq), map }) === null) {
        throw new Error(`image ${p.seq} not accepted`);
      }
    }
    await images.drain();
    await store.flush();
    if (written.size !== opts.parts.length) throw new Error(`only ${written.size} of ${opts.parts.length} images written`);
  } finally {
    await images.close();
    await store.close();
  }
}

/** Save a label through the review code (Labels.set: history row, current label, audit), as the label API does. */
export function putLabel(db: Database.Database, runId: string, seq: number,
  label: { verdict: LabelVerdict; defectClass?: string | null; regions?: Region[] }, actor = 'qa1'): void {
  const labels = new Labels(db, new AuditLog(db));
  const cur = labels.get({ runId, seq });
  labels.set({ runId, seq }, { verdict: label.verdict, defectClass: label.defectClass ?? null, regions: label.regions ?? [] }, cur?.revision ?? 0, actor);
}
