/**
 * The UI charts' axes (ui/src/components/chart-axes.ts, used by Chart.tsx): a time axis on a 5 s live
 * window reads wall-clock seconds (not ":07.500"), hourly ticks read HH:MM with the
 * date on a new day, and count axes have integer ticks only (not "0,000" three times).
 */
import { describe, it, expect } from 'vitest';
import type uPlot from 'uplot';

process.env.TZ = 'UTC'; // the labels are local time: pin it
const { TIME_INCRS, countAxis, countScale, timeLabels } = await import('../ui/src/components/chart-axes.js');
const u = {} as uPlot;

describe('chart axes', () => {
  it('time ticks are whole seconds and labelled as clock times', () => {
    expect(TIME_INCRS.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
    const t0 = Date.UTC(2026, 11, 4, 22, 15, 5) / 1000;
    expect(timeLabels(u, [t0, t0 + 1, t0 + 2], 0, 0, 1)).toEqual(['22:15:05', '22:15:06', '22:15:07']);
    const h0 = Date.UTC(2026, 11, 4, 22, 0, 0) / 1000;
    expect(timeLabels(u, [h0, h0 + 3600, h0 + 7200], 0, 0, 3600)).toEqual(['12-04 22:00', '23:00', '12-05 00:00']);
    expect(timeLabels(u, [h0, h0 + 300], 0, 0, 300)).toEqual(['22:00', '22:05']);
    expect(timeLabels(u, [h0, h0 + 86400], 0, 0, 86400)).toEqual(['12-04', '12-05']);
  });

  it('count axes tick and print integers only, from 0 to at least 1', () => {
    const ax = countAxis();
    expect((ax.incrs as number[]).every((s) => Number.isInteger(s))).toBe(true);
    const values = ax.values as (u: uPlot, v: number[]) => string[];
    expect(values(u, [0, 0.5, 1, 2])).toEqual(['0', '', '1', '2']);
    const range = countScale().range as (u: uPlot, min: number, max: number) => [number, number];
    expect(range(u, 0, 0)).toEqual([0, 1]);
    expect(range(u, 3, 7.2)).toEqual([0, 8]);
  });
});
