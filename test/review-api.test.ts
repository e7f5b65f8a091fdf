/**
 * Review API over a real results database (filled through ResultStore) and a
 * real review database: queue filters and pagination, labels with revisions
 * and conflicts, complete history, bulk actions, audit rows, stats figures,
 * part images and the path check. HTTP through fastify.inject.
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOUBT, HOUR10, HOUR11, PARTS, RUN, THRESHOLD, reviewFixture, type Fixture } from './helpers/review-fixture.js';

let fx: Fixture;
beforeAll(async () => { fx = await reviewFixture(); });
afterAll(async () => { await fx?.close(); });

const get = (url: string, user = 'qa1') => fx.app.inject({ method: 'GET', url, headers: fx.auth(user) });
const send = (method: 'PUT' | 'POST', url: string, payload: unknown, user = 'qa1') =>
  fx.app.inject({ method, url, headers: fx.auth(user), payload: payload as object });

const inQueue = (p: (typeof PARTS)[number]) => p.verdict === 'reject' || p.score >= THRESHOLD - DOUBT;
const newestFirst = (ps: typeof PARTS) => [...ps].sort((a, b) => b.at - a.at).map((p) => p.seq);
const seqs = (body: { items: Array<{ seq: number }> }) => body.items.map((i) => i.seq);

describe('review queue', () => {
  it('holds rejects plus passes within doubtMargin of the threshold, newest first', async () => {
    const res = await get('/api/parts');
    expect(res.statusCode).toBe(200);
    const expected = newestFirst(PARTS.filter(inQueue));
    expect(expected.length).toBeGreaterThan(4);
    expect(seqs(res.json())).toEqual(expected);
    const item = res.json().items.find((i: { seq: number }) => i.seq === 3);
    expect(item).toMatchObject({ runId: RUN, verdict: 'pass', doubtful: true, reviewed: false, label: null, score: 0.45 });
  });

  it('filters by verdict, doubtful, model version, time range; rejects a bad filter with a code', async () => {
    expect(seqs((await get('/api/parts?verdict=reject')).json())).toEqual(newestFirst(PARTS.filter((p) => p.verdict === 'reject')));
    expect(seqs((await get('/api/parts?doubtful=true')).json())).toEqual(newestFirst(PARTS.filter((p) => p.verdict === 'pass' && inQueue(p))));
    expect(seqs((await get('/api/parts?model=1.1.0')).json())).toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && p.version === '1.1.0')));
    expect(seqs((await get('/api/parts?model=default@1.0.0')).json())).toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && p.version === '1.0.0')));
    const from = HOUR10 + 150_000;
    const to = new Date(HOUR11 + 150_000).toISOString();
    expect(seqs((await get(`/api/parts?from=${from}&to=${to}`)).json()))
      .toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && p.at >= from && p.at < HOUR11 + 150_000)));
    // the time range: `to` is exclusive, an empty or inverted range is a coded 400, ISO and epoch ms both work
    expect(seqs((await get(`/api/parts?from=${HOUR11}`)).json())).toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && p.at >= HOUR11)));
    expect(seqs((await get(`/api/parts?to=${new Date(HOUR11).toISOString()}`)).json())).toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && p.at < HOUR11)));
    for (const [f, t] of [[HOUR11, HOUR10], [HOUR11, HOUR11]]) {
      const res = await get(`/api/parts?from=${f}&to=${t}`);
      expect([res.statusCode, res.json().code, res.json().message]).toEqual([400, 'INSPECTOR_BAD_REQUEST', expect.stringContaining('from must be a time before to')]);
    }
    // the range is applied on results.captured_at_ms as a plain range, so SQLite can use its index
    const plan = fx.app.review.queries.db()!.prepare('EXPLAIN QUERY PLAN SELECT id FROM results r WHERE r.captured_at_ms >= ? AND r.captured_at_ms < ? ORDER BY r.captured_at_ms DESC').all(1, 2) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING (COVERING )?INDEX results_captured_at/);
    for (const bad of ['verdict=maybe', 'limit=0', 'from=yesterday', 'to=2026-13-45T99:00:00Z', 'reviewed=perhaps', 'cursor=xyz']) {
      const res = await get(`/api/parts?${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().code, bad).toMatch(/^INSPECTOR_/);
    }
  });

  it('pages with a cursor: every item once, in order', async () => {
    const all: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/api/parts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      all.push(...seqs(res.json()));
      cursor = res.json().nextCursor;
      pages++;
    } while (cursor && pages < 20);
    expect(all).toEqual(newestFirst(PARTS.filter(inQueue)));
    expect(pages).toBe(Math.ceil(all.length / 2));
  });
});

describe('labels', () => {
  const url = `/api/parts/${RUN}/1/label`;
  it('saves with revisions, refuses a stale revision with 409, keeps the complete history, audits before/after', async () => {
    let res = await send('PUT', url, { verdict: 'unsure', regions: [], revision: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.json().label).toMatchObject({ revision: 1, verdict: 'unsure', defectClass: null, by: 'qa1' });

    res = await send('PUT', url, { verdict: 'true_defect', regions: [], revision: 0 }, 'qa2');
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('INSPECTOR_LABEL_CONFLICT');

    const regions = [{ id: 'r1', kind: 'box', x: 10, y: 12, w: 30, h: 8 }, { id: 'r2', kind: 'polygon', points: [[1, 1], [20, 2], [5, 30]] }];
    res = await send('PUT', url, { verdict: 'true_defect', defectClass: 'scratch', regions, revision: 1 }, 'qa2');
    expect(res.statusCode).toBe(200);
    expect(res.json().label).toMatchObject({ revision: 2, verdict: 'true_defect', defectClass: 'scratch', regions, by: 'qa2' });

    // the same content again is not a new revision
    res = await send('PUT', url, { verdict: 'true_defect', defectClass: 'scratch', regions, revision: 2 }, 'qa2');
    expect(res.json()).toMatchObject({ changed: false, label: { revision: 2 } });

    res = await send('PUT', url, { verdict: 'true_defect', defectClass: 'stain', regions: regions.slice(0, 1), revision: 2 });
    expect(res.json().label).toMatchObject({ revision: 3, defectClass: 'stain' });

    const hist = (await get(`${url}/history`, 'op1')).json();
    expect(hist.map((l: { revision: number; verdict: string; defectClass: string | null; by: string }) => [l.revision, l.verdict, l.defectClass, l.by]))
      .toEqual([[1, 'unsure', null, 'qa1'], [2, 'true_defect', 'scratch', 'qa2'], [3, 'true_defect', 'stain', 'qa1']]);
    expect(hist[1].regions).toEqual(regions);

    const audit = (await get(`/api/audit?action=label.&target=${encodeURIComponent(`part:${RUN}/1`)}`)).json().items;
    expect(audit).toHaveLength(3);
    const oldestFirst = [...audit].reverse();
    expect(oldestFirst[0]).toMatchObject({ actor: 'qa1', action: 'label.set', before: null, after: { revision: 1, verdict: 'unsure' } });
    expect(oldestFirst[1]).toMatchObject({ actor: 'qa2', before: { revision: 1, verdict: 'unsure' }, after: { revision: 2, defectClass: 'scratch', regions } });
    expect(oldestFirst[2]).toMatchObject({ before: { revision: 2, defectClass: 'scratch' }, after: { revision: 3, defectClass: 'stain' } });
  });

  it('refuses unknown classes, bad regions, missing parts and the operator role, each with a code', async () => {
    const cases: Array<[string, unknown, number, string, string?]> = [
      [url, { verdict: 'true_defect', defectClass: 'warp', regions: [], revision: 3 }, 400, 'INSPECTOR_UNKNOWN_CLASS'],
      [url, { verdict: 'true_defect', regions: [{ id: 'a', kind: 'box', x: 1, y: 1, w: -3, h: 2 }], revision: 3 }, 400, 'INSPECTOR_BAD_REQUEST'],
      [url, { verdict: 'true_defect', regions: [{ id: 'a', kind: 'polygon', points: [[1, 1]] }], revision: 3 }, 400, 'INSPECTOR_BAD_REQUEST'],
      [url, { verdict: 'great', regions: [], revision: 3 }, 400, 'INSPECTOR_BAD_REQUEST'],
      [url, { verdict: 'unsure', regions: [] }, 400, 'INSPECTOR_BAD_REQUEST'],
      [`/api/parts/${RUN}/999/label`, { verdict: 'unsure', regions: [], revision: 0 }, 404, 'INSPECTOR_NOT_FOUND'],
      [url, { verdict: 'unsure', regions: [], revision: 3 }, 403, 'INSPECTOR_FORBIDDEN', 'op1'],
      [url, { verdict: 'unsure', regions: [], revision: 3 }, 403, 'INSPECTOR_FORBIDDEN', 'ml1'],
    ];
    for (const [u, body, status, code, user] of cases) {
      const res = await send('PUT', u, body, user);
      expect(res.statusCode, JSON.stringify(body)).toBe(status);
      expect(res.json().code).toBe(code);
    }
    expect((await get(`${url}/history`)).json()).toHaveLength(3); // nothing was written
  });

  it('lists the class list from the model manifest plus the station', async () => {
    expect((await get('/api/classes', 'op1')).json().classes).toEqual(['scratch', 'dent', 'stain']);
  });
});

describe('reviewed state and bulk actions', () => {
  it('keeps reviewed state per reviewer and filters on it', async () => {
    // part 1 was labelled by qa1 and qa2 above: reviewed for both; nothing else
    expect(seqs((await get('/api/parts?reviewed=true', 'qa1')).json())).toEqual([1]);
    let res = await send('POST', '/api/review/reviewed', { items: [{ runId: RUN, seq: 6 }, { runId: RUN, seq: 7 }], reviewed: true }, 'qa2');
    expect(res.json().changed).toBe(2);
    expect(seqs((await get('/api/parts?reviewed=true', 'qa2')).json())).toEqual([7, 6, 1]);
    expect(seqs((await get('/api/parts?reviewed=true', 'qa1')).json())).toEqual([1]);
    expect(seqs((await get('/api/parts?reviewed=false', 'qa2')).json())).toEqual(newestFirst(PARTS.filter((p) => inQueue(p) && ![1, 6, 7].includes(p.seq))));
    res = await send('POST', '/api/review/reviewed', { items: [{ runId: RUN, seq: 7 }], reviewed: false }, 'qa2');
    expect(res.json().changed).toBe(1);
    expect(seqs((await get('/api/parts?reviewed=true', 'qa2')).json())).toEqual([6, 1]);
    const audit = (await get('/api/audit?action=review.&actor=qa2')).json().items;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['review.unmark', 'review.mark']);
  });

  it('labels many parts at once, each as a revision with its audit row; class filter finds labels', async () => {
    const items = [2, 6, 7].map((seq) => ({ runId: RUN, seq }));
    const res = await send('POST', '/api/review/label-bulk', { items, verdict: 'false_reject' });
    expect(res.statusCode).toBe(200);
    expect(res.json().labels.map((l: { seq: number; revision: number; verdict: string }) => [l.seq, l.revision, l.verdict]))
      .toEqual([[2, 1, 'false_reject'], [6, 1, 'false_reject'], [7, 1, 'false_reject']]);
    const audit = (await get('/api/audit?action=label.bulk')).json().items;
    expect(audit).toHaveLength(3);
    expect(audit.every((a: { before: unknown; after: { verdict: string } }) => a.before === null && a.after.verdict === 'false_reject')).toBe(true);
    expect(seqs((await get('/api/parts?class=stain')).json())).toEqual([1]);
    // a bulk action naming a part that does not exist changes nothing
    const bad = await send('POST', '/api/review/label-bulk', { items: [{ runId: RUN, seq: 3 }, { runId: RUN, seq: 404 }], verdict: 'unsure' });
    expect(bad.statusCode).toBe(404);
    expect((await get(`/api/parts/${RUN}/3/label/history`)).json()).toEqual([]);
    // seq 8 (a doubtful pass) is labelled a true defect: an escape found by review
    const esc = await send('PUT', `/api/parts/${RUN}/8/label`, { verdict: 'true_defect', defectClass: 'dent', regions: [], revision: 0 });
    expect(esc.statusCode).toBe(200);
  });
});

describe('stats', () => {
  const nearestRank = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.max(1, Math.ceil(q * s.length)) - 1]; };
  it('computes per-hour yield, reject rate and latency percentiles, rejects per class and code, and agreement from the data', async () => {
    const res = await get(`/api/stats?from=${HOUR10}&to=${HOUR11 + 3_600_000}`, 'op1');
    expect(res.statusCode).toBe(200);
    const s = res.json();
    const rejects = PARTS.filter((p) => p.verdict === 'reject').length;
    expect(s.totals).toEqual({ parts: PARTS.length, passes: PARTS.length - rejects, rejects, notInspected: 0, yield: (PARTS.length - rejects) / PARTS.length, rejectRate: rejects / PARTS.length });
    expect(s.hours).toHaveLength(2);
    for (const [i, h0] of [HOUR10, HOUR11].entries()) {
      const ps = PARTS.filter((p) => p.at >= h0 && p.at < h0 + 3_600_000);
      const ms = ps.map((p) => p.ms);
      const hr = ps.filter((p) => p.verdict === 'reject').length;
      expect(s.hours[i]).toMatchObject({ hourMs: h0, parts: ps.length, rejects: hr, rejectRate: hr / ps.length, yield: 1 - hr / ps.length });
      expect(s.hours[i].latency).toMatchObject({ count: ps.length, p50: nearestRank(ms, 0.5), p90: nearestRank(ms, 0.9), p99: nearestRank(ms, 0.99), max: Math.max(...ms) });
      expect(s.hours[i].latency.mean).toBeCloseTo(ms.reduce((a, b) => a + b, 0) / ms.length, 9);
    }
    expect(s.rejectsByCode).toEqual([{ code: 1, count: rejects }]);
    // labels so far: 1 true_defect/stain, 2/6/7 false_reject (rejects), 8 true_defect/dent (a pass)
    expect(s.rejectsByClass).toEqual([{ defectClass: 'dent', count: 1 }, { defectClass: 'stain', count: 1 }]);
    // the model's view is apart: these rows were stored without a class (test/stats-model-class.test.ts has classed ones)
    expect(s.rejectsByModelClass).toEqual([{ defectClass: '(unclassified)', count: rejects }]);
    expect(s.agreement).toMatchObject({ labelledRejects: 4, falseRejects: 3, falseRejectRate: 3 / 4, labelledPasses: 1, escapesFound: 1, agreeing: 1, labelled: 5, agreement: 1 / 5 });
    const hist = s.latencyHistogram as Array<{ leMs: number | null; count: number }>;
    expect(hist.reduce((a, b) => a + b.count, 0)).toBe(PARTS.length);
    const le2 = hist.find((b) => b.leMs === 2)!;
    const le15 = hist.find((b) => b.leMs === 1.5)!;
    expect(le2.count).toBe(PARTS.filter((p) => p.ms > 1.5 && p.ms <= 2).length);
    expect(le15.count).toBe(PARTS.filter((p) => p.ms > 1 && p.ms <= 1.5).length);
    // finer buckets near `to`: 1 minute in the last hour, 5 minutes in the 6 hours before (edges aligned), hourly beyond
    const near = (await get(`/api/stats?from=${HOUR10}&to=${HOUR11 + 360_000}`, 'op1')).json();
    const M = 60_000;
    expect(near.buckets.map((b: { startMs: number; spanMs: number; parts: number }) => [b.startMs - HOUR10, b.spanMs, b.parts])).toEqual([
      [0, 5 * M, 4], [5 * M, M, 1], [6 * M, M, 1], [61 * M, M, 1], [62 * M, M, 1], [63 * M, M, 1], [64 * M, M, 1], [65 * M, M, 1],
    ]);
    expect(near.buckets[0].latency.p50).toBe(nearestRank(PARTS.slice(0, 4).map((p) => p.ms), 0.5));
    expect(near.hours.map((h: { hourMs: number }) => h.hourMs)).toEqual([HOUR10, HOUR11]); // the hourly series is unchanged
    // a range ending long after the data: the data falls in hourly buckets
    const far = (await get(`/api/stats?from=${HOUR10}&to=${HOUR11 + 24 * 3_600_000}`, 'op1')).json();
    expect(far.buckets.map((b: { startMs: number; spanMs: number; parts: number }) => [b.startMs, b.spanMs, b.parts])).toEqual([[HOUR10, 3_600_000, 6], [HOUR11, 3_600_000, 5]]);
    const bad = await get(`/api/stats?from=${HOUR11}&to=${HOUR10}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INSPECTOR_BAD_REQUEST');
  });
});

describe('part images', () => {
  it('serves the saved PNG and the map as an RGBA heatmap; refuses paths outside the images folder', async () => {
    let res = await get(`/api/parts/${RUN}/1/image`, 'op1');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    const meta = await sharp(res.rawPayload).metadata();
    expect([meta.width, meta.height]).toEqual([64, 48]);
    res = await get(`/api/parts/${RUN}/1/map`, 'op1');
    expect(res.statusCode).toBe(200);
    const map = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    expect([map.info.width, map.info.height, map.info.channels]).toEqual([16, 12, 4]);
    // the gray map ramps 0..191 along the buffer: alpha (channel 3) rises with it
    expect(map.data[3]).toBe(0);
    expect(map.data[(16 * 12 - 1) * 4 + 3]).toBeGreaterThan(200);
    const wide = await sharp((await get(`/api/parts/${RUN}/1/map?width=64`, 'op1')).rawPayload).metadata();
    expect([wide.width, wide.height, wide.channels]).toEqual([64, 48, 4]);
    res = await get(`/api/parts/${RUN}/2/image`);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('INSPECTOR_PATH_OUTSIDE');
    res = await get(`/api/parts/${RUN}/3/image`);
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('INSPECTOR_IMAGE_MISSING');
    res = await get(`/api/parts/${RUN}/3`);
    expect(res.json()).toMatchObject({ seq: 3, verdict: 'pass', doubtful: true, hasImage: false });
  });
});

describe('the query connection', () => {
  it('cannot write the results database nor the attached review database', () => {
    const db = fx.app.review.queries.db()!;
    expect(() => db.prepare("INSERT INTO rv.reviewed (run_id, seq, reviewer, at_ms) VALUES ('x', 1, 'y', 0)").run()).toThrow(/readonly/);
    expect(() => db.prepare('DELETE FROM results').run()).toThrow(/readonly/);
  });

  it('the schema itself refuses to rewrite history', () => {
    const db = fx.app.review.db;
    expect(() => db.prepare('UPDATE audit SET actor = ?').run('someone-else')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM label_revisions').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE labels SET verdict = 'unsure' WHERE seq = 1").run()).toThrow(/new history row/);
    expect(() => db.prepare("INSERT INTO labels (run_id, seq, revision, verdict, regions_json, actor, at_ms) VALUES ('run-1', 5, 1, 'unsure', '[]', 'x', 0)").run()).toThrow(/history row first/);
  });
});
