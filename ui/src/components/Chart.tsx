/**
 * A uPlot chart that follows its container's width and redraws when its data changes.
 * Time x-axes get whole-second ticks and wall-clock labels (uPlot's defaults put
 * ticks at half seconds on a 5 s window and print them as ":07.500"); count axes
 * (`countAxis`) get integer ticks only (a 0…1 range otherwise reads 0, 0.2, … and,
 * formatted, "0,000" three times).
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { TIME_INCRS, timeLabels } from './chart-axes.js';

export { TIME_INCRS, countAxis, countScale, timeLabels } from './chart-axes.js';

export interface ChartProps {
  title: string;
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  axes?: uPlot.Axis[];
  scales?: uPlot.Scales;
  height?: number;
  /** x is time in seconds (uPlot's convention) unless false */
  time?: boolean;
  testid?: string;
  /** uPlot's legend row under the chart (default on) */
  legend?: boolean;
}

export function Chart({ title, data, series, axes, scales, height = 200, time = true, testid, legend = true }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current!;
    const ax = [...(axes ?? [{ stroke: '#9aa4b1', grid: { stroke: '#2a3038' } }, { stroke: '#9aa4b1', grid: { stroke: '#2a3038' } }])];
    // the caller's own x-axis settings win; what it leaves out gets proper time ticks and labels
    if (time && ax[0]) ax[0] = { incrs: TIME_INCRS, values: timeLabels, ...ax[0] };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth), height,
      // one point (one hour so far) would collapse the x range: pad it
      scales: { x: { time, range: (_u, min, max) => (min === max ? [min - (time ? 1800 : 1), max + (time ? 1800 : 1)] : [min, max]) }, ...scales },
      series: [{}, ...series],
      axes: ax,
      legend: { show: legend },
      cursor: { drag: { x: true, y: false } },
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => { ro.disconnect(); plot.current?.destroy(); plot.current = null; };
    // series/axes define the chart; a change of shape rebuilds it
  }, [series.length, height, time, legend, JSON.stringify(series.map((s) => s.label))]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  return (
    <figure class="chart" data-testid={testid}>
      <figcaption>{title}{legend ? null : series.map((s) => <span key={String(s.label)} class="key" style={{ color: String(s.stroke) }}> ■ {s.label}</span>)}</figcaption>
      <div ref={box} />
    </figure>
  );
}

/** Bars for uPlot series (rejects per class, histogram buckets). */
export const bars = (): uPlot.Series.PathBuilder => uPlot.paths.bars!({ size: [0.7, 60] });
