/**
 * Axis helpers for the uPlot charts (pure: no DOM, unit-tested in test/ui-chart-axes.test.ts).
 * Time axes: whole-second ticks and wall-clock labels; count axes: integer ticks only.
 */
import type uPlot from 'uplot';

/** Tick steps of a time axis, in seconds: whole seconds up to days. */
export const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400];
const two = (n: number): string => String(n).padStart(2, '0');
/**
 * Wall-clock tick labels (local time) for splits in seconds: HH:MM:SS when the ticks
 * are less than a minute apart, HH:MM within a day, then "MM-DD HH:MM" or "MM-DD" at
 * whole days; the first tick of a new day carries its date.
 */
export function timeLabels(_u: uPlot, splits: number[], _axis?: number, _space?: number, incr?: number): string[] {
  const step = incr ?? (splits.length > 1 ? splits[1]! - splits[0]! : 3600);
  let lastDay = '';
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const day = `${two(d.getMonth() + 1)}-${two(d.getDate())}`;
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
    const newDay = day !== lastDay;
    lastDay = day;
    if (step >= 86400) return day;
    if (step < 60) return `${hm}:${two(d.getSeconds())}`;
    return newDay && step >= 3600 ? `${day} ${hm}` : hm;
  });
}

/** A y-axis for counts: integer ticks only, printed as integers. */
export const countAxis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({
  stroke: '#9aa4b1', grid: { stroke: '#2a3038' },
  incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1e6, 1e7],
  values: (_u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')),
  ...extra,
});
/** A y scale for counts: from 0, at least up to 1 (an all-zero chart still has a 0 and a 1 tick). */
export const countScale = (): uPlot.Scale => ({ range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max ?? 1))] });
