/**
 * Stats: yield and reject rate over time (the server's `buckets`: 1-minute
 * points in the last hour, 5-minute ones in the 6 hours before, hourly beyond,
 * so a new station shows a curve, not one hourly dot), rejects per class (as QA labelled
 * them, and as the model classed them: `rejectsByModelClass`), the latency
 * histogram and percentiles over time, and how the live model agrees with QA's
 * labels (false reject rate, escapes found by review). Charts are uPlot.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { api, ApiError, type Stats } from '../api.js';
import { useKeys } from '../components/keys.js';
import { Chart, bars, countAxis, countScale } from '../components/Chart.js';

/** GET /api/stats `buckets` (inspector/review/stats.ts): the hourly figures on a finer grid near `to` */
type Bucket = Omit<Stats['hours'][number], 'hour' | 'hourMs'> & { startMs: number; spanMs: number };

const RANGES: Array<[string, number]> = [['8h', 8], ['24h', 24], ['7d', 168], ['30d', 720]];
const axis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({ stroke: '#9aa4b1', grid: { stroke: '#2a3038' }, ...extra });

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);

export function StatsPage() {
  const [hours, setHours] = useState(24);
  const [stats, setStats] = useState<Stats | null>(null);
  const [span, setSpan] = useState<[number, number]>([0, 1]); // x range of the hourly charts (s)
  const [error, setError] = useState<string | null>(null);
  const load = (): void => {
    const to = Date.now();
    setSpan([(to - hours * 3600e3) / 1000, to / 1000]);
    api.stats(to - hours * 3600e3, to).then((s) => { setStats(s); setError(null); }, (e: ApiError) => setError(`${e.code}: ${e.message}`));
  };
  useEffect(load, [hours]);
  useKeys('Stats', [
    ...RANGES.map(([label, h], i) => ({ keys: [String(i + 1)], help: `last ${label}`, run: () => setHours(h) })),
    { keys: ['g'], help: 'reload', run: load },
  ]);

  // older servers sent only `hours`: the same figures, hourly
  const hourly: Bucket[] = (stats as (Stats & { buckets?: Bucket[] }) | null)?.buckets
    ?? (stats?.hours ?? []).map((h) => ({ ...h, startMs: h.hourMs, spanMs: 3_600_000 }));
  const yieldData = useMemo(() => [hourly.map((h) => h.startMs / 1000), hourly.map((h) => (h.yield === null ? null : h.yield * 100)),
    hourly.map((h) => (h.rejectRate === null ? null : h.rejectRate * 100))] as uPlot.AlignedData, [stats]);
  const pctData = useMemo(() => [hourly.map((h) => h.startMs / 1000), hourly.map((h) => h.latency.p50), hourly.map((h) => h.latency.p90),
    hourly.map((h) => h.latency.p99)] as uPlot.AlignedData, [stats]);
  const classes = stats?.rejectsByClass ?? [];
  const classData = useMemo(() => [classes.map((_, i) => i), classes.map((c) => c.count)] as uPlot.AlignedData, [stats]);
  const modelClasses = stats?.rejectsByModelClass ?? [];
  const modelClassData = useMemo(() => [modelClasses.map((_, i) => i), modelClasses.map((c) => c.count)] as uPlot.AlignedData, [stats]);
  const hist = { le: (stats?.latencyHistogram ?? []).map((b) => b.leMs), counts: (stats?.latencyHistogram ?? []).map((b) => b.count) };
  const histData = useMemo(() => [hist.le.map((_, i) => i), hist.counts] as uPlot.AlignedData, [stats]);
  const ag = stats?.agreement;
  const t = stats?.totals;

  return (
    <div class="stats">
      <div class="filters">
        {RANGES.map(([label, h], i) => (
          <button key={label} class={hours === h ? 'on' : ''} onClick={() => setHours(h)}><kbd>{i + 1}</kbd> last {label}</button>
        ))}
        {error ? <span class="error">Could not load stats: {error}</span> : null}
      </div>
      <section class="agreement" data-testid="agreement">
        <h3>Live model vs QA labels</h3>
        <div class="kpis">
          <div class="kpi"><div class="kpi-value">{t?.parts ?? '–'}</div><div class="kpi-label">parts · yield {pct(t?.yield)}</div></div>
          <div class="kpi"><div class="kpi-value">{ag?.labelled ?? '–'}</div><div class="kpi-label">parts labelled · agreement {pct(ag?.agreement)}</div></div>
          <div class="kpi"><div class="kpi-value">{pct(ag?.falseRejectRate)}</div><div class="kpi-label">false reject rate ({ag?.falseRejects ?? 0} of {ag?.labelledRejects ?? 0} labelled rejects)</div></div>
          <div class="kpi"><div class="kpi-value">{ag?.escapesFound ?? '–'}</div><div class="kpi-label">escapes found by review (of {ag?.labelledPasses ?? 0} labelled passes)</div></div>
          <div class="kpi"><div class="kpi-value">{ag?.unsure ?? '–'}</div><div class="kpi-label">unsure</div></div>
        </div>
      </section>
      <div class="chart-grid">
        <Chart key={`y-${span[0]}`} title="Yield and reject rate (%): per minute in the last hour, per 5 min in the 6 h before, hourly beyond" testid="chart-yield" data={yieldData}
          scales={{ x: { time: true, range: () => span }, y: { range: [0, 100] } }}
          series={[{ label: 'yield %', stroke: '#81c784', width: 2 }, { label: 'reject %', stroke: '#ef5350', width: 2 }]} />
        <Chart key={`c-${classes.map((c) => c.defectClass).join()}`} title="Rejects per class, QA labels (true defects)" testid="chart-classes" time={false} data={classData}
          series={[{ label: 'rejects', stroke: '#ffb74d', fill: 'rgba(255,183,77,0.5)', paths: bars(), points: { show: false } }]}
          scales={{ x: { time: false, range: () => [-0.5, Math.max(1, classes.length) - 0.5] }, y: countScale() }}
          axes={[axis({ splits: () => classes.map((_, i) => i), values: (_u, v) => v.map((i) => classes[i]?.defectClass ?? '') }), countAxis()]} />
        <Chart key={`m-${modelClasses.map((c) => c.defectClass).join()}`} title="Rejects per class, the model's verdict" testid="chart-model-classes" time={false} data={modelClassData}
          series={[{ label: 'rejects', stroke: '#ba68c8', fill: 'rgba(186,104,200,0.5)', paths: bars(), points: { show: false } }]}
          scales={{ x: { time: false, range: () => [-0.5, Math.max(1, modelClasses.length) - 0.5] }, y: countScale() }}
          axes={[axis({ splits: () => modelClasses.map((_, i) => i), values: (_u, v) => v.map((i) => modelClasses[i]?.defectClass ?? '') }), countAxis()]} />
        <Chart key={`h-${hist.le.join()}`} title="Frame→verdict latency histogram (parts per bucket, ≤ ms)" testid="chart-histogram" time={false} data={histData}
          series={[{ label: 'parts', stroke: '#4fc3f7', fill: 'rgba(79,195,247,0.5)', paths: bars(), points: { show: false } }]}
          scales={{ x: { time: false, range: () => [-0.5, Math.max(1, hist.le.length) - 0.5] }, y: countScale() }}
          axes={[axis({ splits: () => hist.le.map((_, i) => i), values: (_u, v) => v.map((i) => (i >= hist.le.length ? '' : hist.le[i] === null ? '>' + String(hist.le[i - 1] ?? '') : String(hist.le[i]))) }), countAxis()]} />
        <Chart key={`p-${span[0]}`} title="Frame→verdict percentiles (ms), same time buckets" testid="chart-percentiles" data={pctData}
          scales={{ x: { time: true, range: () => span } }}
          series={[{ label: 'p50', stroke: '#81c784', width: 2 }, { label: 'p90', stroke: '#ffb74d', width: 2 }, { label: 'p99', stroke: '#ef5350', width: 2 }]} />
      </div>
      {stats && !hourly.length ? <p class="muted">No parts in this time range.</p> : null}
    </div>
  );
}
