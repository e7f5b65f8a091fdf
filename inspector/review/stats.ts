/**
 * Figures for the Stats page, computed in SQL on the read-only query
 * connection (results + ATTACHed review database):
 * - per hour: parts, passes, rejects, yield, reject rate, frame→verdict
 *   percentiles (exact, nearest rank, via window functions) and mean;
 *   `notInspected`: the rejects the station did not inspect (code
 *   NOT_INSPECTED: dropped under load, camera error, never seen; every part
 *   the line numbered has a row), counted in parts and rejects too
 * - rejects per result code; per QA defect class (labels `true_defect`,
 *   `rejectsByClass`); and per model defect class (rejects by their
 *   `results.defect_class`, `rejectsByModelClass`; NULL counts as
 *   `(unclassified)`, e.g. an over-budget reject; parts not inspected are
 *   not the model's: rejectsByModelClass + notInspected = rejects)
 * - `buckets`: the same per-bucket figures on a finer grid for recent hours
 *   (1-minute buckets in the last hour, 5-minute buckets in the 6 hours
 *   before, hourly beyond; edges aligned so a coarse bucket never overlaps a
 *   fine one), so a station that has run for ten minutes shows ten points,
 *   not one hourly dot
 * - the frame→verdict latency histogram over the whole range
 * - agreement between the model and QA labels: false reject rate (labelled
 *   rejects that QA calls false_reject), escapes found by review (passes QA
 *   calls true_defect), overall agreement; `unsure` labels count in neither
 */
import type BetterSqlite3 from 'better-sqlite3';
import { ResultCode } from '../core/types.js';

const HOUR_MS = 3_600_000;
const FIVE_MIN_MS = 300_000;
const MINUTE_MS = 60_000;
/** upper edges (ms) of the latency histogram; the last bucket is open */
export const LATENCY_EDGES_MS = [0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 100] as const;
const NOT_INSPECTED = Number(ResultCode.NOT_INSPECTED);

export interface HourStats {
  hour: string; hourMs: number; parts: number; passes: number; rejects: number;
  /** rejects the station did not inspect (code NOT_INSPECTED) */
  notInspected: number;
  yield: number | null; rejectRate: number | null;
  latency: { count: number; p50: number | null; p90: number | null; p99: number | null; max: number | null; mean: number | null };
}

/** one time bucket of `buckets` (spanMs: 60 s, 5 min or 1 h) */
export interface BucketStats extends Omit<HourStats, 'hour' | 'hourMs'> { startMs: number; spanMs: number }

export interface Stats {
  from: string; to: string;
  totals: { parts: number; passes: number; rejects: number; notInspected: number; yield: number | null; rejectRate: number | null };
  hours: HourStats[];
  buckets: BucketStats[];
  rejectsByCode: Array<{ code: number; count: number }>;
  /** QA's view: parts labelled `true_defect`, by the label's class */
  rejectsByClass: Array<{ defectClass: string; count: number }>;
  /** the model's view: rejects by `results.defect_class` (parts not inspected are not in it) */
  rejectsByModelClass: Array<{ defectClass: string; count: number }>;
  latencyHistogram: Array<{ leMs: number | null; count: number }>;
  agreement: {
    labelledRejects: number; falseRejects: number; falseRejectRate: number | null;
    labelledPasses: number; escapesFound: number; escapeRate: number | null;
    agreeing: number; labelled: number; agreement: number | null; unsure: number;
  };
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
/** nearest-rank index ceil(q*n) in SQL (no ceil() in this SQLite build) */
const rank = (q: number): string => `MAX(1, CAST(${q} * n AS INTEGER) + (${q} * n > CAST(${q} * n AS INTEGER)))`;

interface BucketRow {
  b: number; parts: number; passes: number; rejects: number; not_inspected: number; lat_n: number; mean: number | null; max: number | null;
  p50: number | null; p90: number | null; p99: number | null;
}

/** Counts and exact latency percentiles per bucket; `bucketSql` maps captured_at_ms to its bucket's start (ms). */
function perBucket(db: BetterSqlite3.Database, bucketSql: string, from: number, to: number): BucketRow[] {
  return db.prepare(`
    WITH t AS (
      SELECT ${bucketSql} AS b, verdict, code, frame_to_verdict_ms AS ms FROM results
      WHERE captured_at_ms >= ? AND captured_at_ms < ?),
    w AS (
      SELECT b, verdict, code, ms,
        ROW_NUMBER() OVER (PARTITION BY b, ms IS NULL ORDER BY ms) AS rn,
        COUNT(ms) OVER (PARTITION BY b) AS n
      FROM t)
    SELECT b, COUNT(*) AS parts, SUM(verdict = 'pass') AS passes, SUM(verdict = 'reject') AS rejects,
      SUM(verdict = 'reject' AND code = ${NOT_INSPECTED}) AS not_inspected,
      MAX(n) AS lat_n, AVG(ms) AS mean, MAX(ms) AS max,
      MAX(CASE WHEN ms IS NOT NULL AND rn = ${rank(0.5)} THEN ms END) AS p50,
      MAX(CASE WHEN ms IS NOT NULL AND rn = ${rank(0.9)} THEN ms END) AS p90,
      MAX(CASE WHEN ms IS NOT NULL AND rn = ${rank(0.99)} THEN ms END) AS p99
    FROM w GROUP BY b ORDER BY b`).all(from, to) as BucketRow[];
}

const figures = (h: BucketRow): Omit<HourStats, 'hour' | 'hourMs'> => ({
  parts: h.parts, passes: h.passes, rejects: h.rejects, notInspected: h.not_inspected,
  yield: ratio(h.passes, h.parts), rejectRate: ratio(h.rejects, h.parts),
  latency: { count: h.lat_n, p50: h.p50, p90: h.p90, p99: h.p99, max: h.max, mean: h.mean },
});

export function computeStats(db: BetterSqlite3.Database, from: number, to: number): Stats {
  const hours = perBucket(db, `CAST(captured_at_ms / ${HOUR_MS} AS INTEGER) * ${HOUR_MS}`, from, to);
  // finer grid near `to`: the edges are multiples of the coarser bucket, so buckets never overlap
  const fiveMinFrom = Math.floor((to - 6 * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const minuteFrom = Math.max(fiveMinFrom, Math.floor((to - HOUR_MS) / FIVE_MIN_MS) * FIVE_MIN_MS);
  const fine = perBucket(db, `CASE WHEN captured_at_ms >= ${minuteFrom} THEN CAST(captured_at_ms / ${MINUTE_MS} AS INTEGER) * ${MINUTE_MS}
      WHEN captured_at_ms >= ${fiveMinFrom} THEN CAST(captured_at_ms / ${FIVE_MIN_MS} AS INTEGER) * ${FIVE_MIN_MS}
      ELSE CAST(captured_at_ms / ${HOUR_MS} AS INTEGER) * ${HOUR_MS} END`, from, to);
  const spanOf = (b: number): number => (b >= minuteFrom ? MINUTE_MS : b >= fiveMinFrom ? FIVE_MIN_MS : HOUR_MS);

  const byCode = db.prepare(`SELECT code, COUNT(*) AS count FROM results
    WHERE verdict = 'reject' AND captured_at_ms >= ? AND captured_at_ms < ? GROUP BY code ORDER BY code`).all(from, to) as Array<{ code: number; count: number }>;

  const byClass = db.prepare(`SELECT COALESCE(l.defect_class, '(unclassified)') AS defectClass, COUNT(*) AS count
    FROM results r JOIN rv.labels l ON l.run_id = r.run_id AND l.seq = r.seq
    WHERE l.verdict = 'true_defect' AND r.captured_at_ms >= ? AND r.captured_at_ms < ?
    GROUP BY 1 ORDER BY count DESC, defectClass`).all(from, to) as Array<{ defectClass: string; count: number }>;

  const byModelClass = db.prepare(`SELECT COALESCE(defect_class, '(unclassified)') AS defectClass, COUNT(*) AS count
    FROM results WHERE verdict = 'reject' AND code <> ${NOT_INSPECTED} AND captured_at_ms >= ? AND captured_at_ms < ?
    GROUP BY 1 ORDER BY count DESC, defectClass`).all(from, to) as Array<{ defectClass: string; count: number }>;

  const bucketCase = `CASE ${LATENCY_EDGES_MS.map((e, i) => `WHEN frame_to_verdict_ms <= ${e} THEN ${i}`).join(' ')} ELSE ${LATENCY_EDGES_MS.length} END`;
  const hist = db.prepare(`SELECT ${bucketCase} AS b, COUNT(*) AS count FROM results
    WHERE frame_to_verdict_ms IS NOT NULL AND captured_at_ms >= ? AND captured_at_ms < ? GROUP BY b`).all(from, to) as Array<{ b: number; count: number }>;
  const histCounts = new Array<number>(LATENCY_EDGES_MS.length + 1).fill(0);
  for (const h of hist) histCounts[h.b] = h.count;

  const a = db.prepare(`SELECT
      SUM(r.verdict = 'reject' AND l.verdict IN ('true_defect','false_reject')) AS labelledRejects,
      SUM(r.verdict = 'reject' AND l.verdict = 'false_reject') AS falseRejects,
      SUM(r.verdict = 'pass' AND l.verdict IN ('true_defect','false_reject')) AS labelledPasses,
      SUM(r.verdict = 'pass' AND l.verdict = 'true_defect') AS escapesFound,
      SUM(l.verdict = 'unsure') AS unsure
    FROM results r JOIN rv.labels l ON l.run_id = r.run_id AND l.seq = r.seq
    WHERE r.captured_at_ms >= ? AND r.captured_at_ms < ?`).get(from, to) as Record<string, number | null>;
  const n = (k: string): number => a[k] ?? 0;
  const labelled = n('labelledRejects') + n('labelledPasses');
  const agreeing = (n('labelledRejects') - n('falseRejects')) + (n('labelledPasses') - n('escapesFound'));

  const parts = hours.reduce((s, h) => s + h.parts, 0);
  const passes = hours.reduce((s, h) => s + h.passes, 0);
  const rejects = hours.reduce((s, h) => s + h.rejects, 0);
  const notInspected = hours.reduce((s, h) => s + h.not_inspected, 0);
  return {
    from: new Date(from).toISOString(), to: new Date(to).toISOString(),
    totals: { parts, passes, rejects, notInspected, yield: ratio(passes, parts), rejectRate: ratio(rejects, parts) },
    hours: hours.map((h) => ({ hourMs: h.b, hour: new Date(h.b).toISOString(), ...figures(h) })),
    buckets: fine.map((h) => ({ startMs: h.b, spanMs: spanOf(h.b), ...figures(h) })),
    rejectsByCode: byCode,
    rejectsByClass: byClass,
    rejectsByModelClass: byModelClass,
    latencyHistogram: histCounts.map((count, i) => ({ leMs: LATENCY_EDGES_MS[i] ?? null, count })),
    agreement: {
      labelledRejects: n('labelledRejects'), falseRejects: n('falseRejects'), falseRejectRate: ratio(n('falseRejects'), n('labelledRejects')),
      labelledPasses: n('labelledPasses'), escapesFound: n('escapesFound'), escapeRate: ratio(n('escapesFound'), n('labelledPasses')),
      agreeing, labelled, agreement: ratio(agreeing, labelled), unsure: n('unsure'),
    },
  };
}
