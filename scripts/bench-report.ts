/** The benchmark report: JSON shape and the readable table. */
import type { LoadReport } from './bench-station-load.js';
import { ASIDE } from './line-stages.js';

export interface Pcts { p50: number; p99: number; max?: number }

export interface BenchReport {
  date: string;
  machine: { cpus: number; cpu: string; node: string };
  config: Record<string, unknown>;
  provider: string;
  provider_fallbacks: Array<{ provider: string; reason: string }>;
  /** the headline: photo-eye → result latched at the PLC, per part, one clock (scripts/line-stages.ts) */
  photo_eye_to_latch_ms: Required<Pcts>;
  photo_eye_to_latch_inspected_ms: Required<Pcts>;
  /** the stages that add up to it, per part (trigger_to_frame … plc_write), plc_write_call and plc_ack beside them */
  line_stages_ms: Record<string, Required<Pcts>>;
  line_timing: { fired: number; latched: number; late_latched: number; no_latch: number; inspected: number;
    negative_intervals: number; unmatched_results: number; clock: string };
  frame_to_verdict_ms: Required<Pcts>;
  plc_write_ms: Required<Pcts>;
  bare_inference_ms: Pcts;
  stages_ms: Record<string, Pcts>;
  ratio_f2v_p50_over_bare_p50: number;
  ratio_f2v_p50_over_bare_with_preprocess_p50: number;
  bare_preprocess_and_inference_ms: Pcts;
  parts: { sent: number; verdicts: number; plc_acknowledged: number; lost: number; late: number; dropped_frames: number;
    /** parts the station did not inspect, by reason (each has its row) */
    not_inspected?: Record<string, number> };
  [extra: string]: unknown;
}

const f = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '   -  ' : n.toFixed(3).padStart(7));

export function formatBenchTable(r: BenchReport): string {
  const rows: string[] = [];
  rows.push(`inline-inspector bench  ${r.date}  ${r.machine.cpus} cpu  ${r.machine.node}  provider=${r.provider}`);
  rows.push(`config: ${JSON.stringify(r.config)}`);
  rows.push('');
  rows.push('latency (ms)            p50      p99      max');
  const h = r.photo_eye_to_latch_ms;
  const t = r.line_timing;
  rows.push(`PHOTO-EYE → LATCHED AT PLC ${f(h.p50)}  ${f(h.p99)}  ${f(h.max)}   (${t.latched} of ${t.fired} parts latched, ${t.late_latched} late; one clock)`);
  for (const [k, v] of Object.entries(r.line_stages_ms)) {
    const aside = (ASIDE as readonly string[]).includes(k); // not stages: see scripts/line-stages.ts
    rows.push(`  ${aside ? '(beside) ' : ''}${k.padEnd(aside ? 16 : 24)}${f(v.p50)}  ${f(v.p99)}  ${f(v.max)}`);
  }
  if (t.negative_intervals > 0) rows.push(`  !! ${t.negative_intervals} stage intervals below zero: the two processes' clocks disagree`);
  rows.push(`frame → verdict     ${f(r.frame_to_verdict_ms.p50)}  ${f(r.frame_to_verdict_ms.p99)}  ${f(r.frame_to_verdict_ms.max)}`);
  rows.push(`PLC write           ${f(r.plc_write_ms.p50)}  ${f(r.plc_write_ms.p99)}  ${f(r.plc_write_ms.max)}`);
  rows.push(`bare session.run    ${f(r.bare_inference_ms.p50)}  ${f(r.bare_inference_ms.p99)}   (real frames, during the run: ${String(r.bare_samples)} samples)`);
  rows.push(`bare prep + run     ${f(r.bare_preprocess_and_inference_ms.p50)}  ${f(r.bare_preprocess_and_inference_ms.p99)}   (preprocessing: ${String(r.preprocess)})`);
  for (const [k, v] of Object.entries(r.stages_ms)) rows.push(`  stage ${k.padEnd(13)}${f(v.p50)}  ${f(v.p99)}`);
  const ml = r.main_event_loop as { delay_ms: Required<Pcts>; utilization: number;
    gc?: { pauses: number; major: number; total_ms: number; max_ms: number; over_5ms: number } } | undefined;
  if (ml) rows.push(`main event-loop delay ${f(ml.delay_ms.p50)}  ${f(ml.delay_ms.p99)}  ${f(ml.delay_ms.max)}   (busy ${(100 * ml.utilization).toFixed(1)} % of the run)`);
  const w = r.machine_wake_late_ms as { threads: number; p50: number; p99: number; p999: number; max: number } | undefined;
  if (w) rows.push(`machine floor: a thread woken after 1 ms runs late p50 ${f(w.p50)} / p99 ${f(w.p99)} / p99.9 ${f(w.p999)} / max ${f(w.max)} ms (station idle, before the line)`);
  const reh = r.rehearsal as { frames: number; failed: number; firstMs: number; lastMs: number; maxMs: number; timedOut: boolean } | null | undefined;
  if (reh) rows.push(`line rehearsal before Ready: ${reh.frames} frames (${reh.failed} failed${reh.timedOut ? ', cut short' : ''}), frame→verdict first ${f(reh.firstMs)} / last ${f(reh.lastMs)} / max ${f(reh.maxMs)} ms`);
  if (ml?.gc) rows.push(`main thread GC: ${ml.gc.pauses} pauses (${ml.gc.major} major), ${ml.gc.total_ms.toFixed(0)} ms in all, longest ${ml.gc.max_ms.toFixed(1)} ms, ${ml.gc.over_5ms} over 5 ms`);
  rows.push(`frame→verdict p50 / bare prep + run p50 = ${r.ratio_f2v_p50_over_bare_with_preprocess_p50.toFixed(2)}  (target ≤ 1.3);  / bare session.run p50 = ${r.ratio_f2v_p50_over_bare_p50.toFixed(2)}`);
  rows.push('');
  const p = r.parts;
  rows.push(`parts: sent ${p.sent}  verdicts ${p.verdicts}  PLC acked ${p.plc_acknowledged}  lost ${p.lost}  late ${p.late}  dropped frames ${p.dropped_frames}`
    + (p.not_inspected ? `  not inspected ${Object.values(p.not_inspected).reduce((a, b) => a + b, 0)}` : ''));
  rows.push(`targets: photo-eye → latched p99 ≤ 5 ms: ${h.p99 <= 5 ? 'met' : `NOT met (by ${(h.p99 - 5).toFixed(2)} ms)`};  frame → verdict p99 ≤ 5 ms: ${r.frame_to_verdict_ms.p99 <= 5 ? 'met' : 'NOT met'};  lost = late = 0: ${p.lost === 0 && p.late === 0 ? 'met' : 'NOT met'};  ratio ≤ 1.3 (over bare prep + run): ${r.ratio_f2v_p50_over_bare_with_preprocess_p50 <= 1.3 ? 'met' : 'NOT met'}`);
  if (r.station_load) rows.push(...stationLoadLines(r.station_load as LoadReport));
  return rows.join('\n') + '\n';
}

/** --station-load: what ran beside the line (scripts/bench-station-load.ts). */
function stationLoadLines(l: LoadReport): string[] {
  const a = l.api;
  const statuses = Object.entries(a.by_status).map(([k, v]) => `${k}: ${v}`).join(', ');
  const s = l.shadow;
  const w = l.while_loaded;
  return [
    `station load (all on after ${l.parts_when_loaded} verdicts, ${(l.setup_ms / 1000).toFixed(1)} s of set-up; then ${l.seconds_loaded.toFixed(1)} s):  API ${a.sent} sent at ${a.rate_per_s}/s (${statuses}; ${a.skipped} skipped)`
      + `  p50 ${f(a.latency_ms.p50)}  p99 ${f(a.latency_ms.p99)} ms`,
    `  browser on Live: ${l.browser.live_feed_messages} feed messages, ${l.browser.page_errors} page errors;  shadow ${s.model}: `
      + `${s.compared} of ${s.offered} compared, agreement ${s.agreement === null ? '-' : `${(100 * s.agreement).toFixed(1)} %`};  images written ${l.images.written}, dropped ${l.images.dropped}`,
    ...(w ? [`  while all of it was on (${w.parts} parts): frame → verdict ${f(w.frame_to_verdict_ms.p50)} ${f(w.frame_to_verdict_ms.p99)} ${f(w.frame_to_verdict_ms.max)}`
      + `  PLC write p99 ${f(w.plc_write_ms.p99)}  gate ${JSON.stringify(w.gate_outcomes)}  not inspected ${JSON.stringify(w.not_inspected)}`] : []),
  ];
}
