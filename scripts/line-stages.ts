/**
 * The benchmark's headline and its stages, per part, on one clock.
 *
 * The PLC simulator (its own process) stamps each part's photo-eye and the
 * instant the station's result for it latched into its gate (plc/line-timing.ts);
 * the station stamps capture, inference start/end, verdict and the PLC's ack
 * (station/part-timeline.ts). Both read CLOCK_MONOTONIC (process.hrtime.bigint()),
 * so the differences below are exact per part, and the five line stages of a
 * part add up to its photo-eye → latched figure:
 *
 *   trigger_to_frame           photo-eye (the camera trigger leaves with it) → frame in host memory
 *   frame_to_inference_start   → the inference worker starts on it (capture worker → main → worker hand-overs, queueing)
 *   inference                  the worker's job: binning / registration / lens table + session.run
 *   decision                   → verdict on the main thread (result hand-over back + the decision rule)
 *   plc_write                  → the result latched at the PLC (OPC UA write request, the PLC's event loop)
 *
 * and two figures beside them, not stages: plc_write_call, how long the station's thread spent
 * inside writeResult() (node-opcua builds, encodes, signs/encrypts and writes the request there;
 * the PLC may latch it before the call returns, so it is part of plc_write, not before it), and
 * plc_ack: latched → the write's answer back at the station (off the path).
 *
 * The first two stages are also split where the frame changes threads (beside them, parts of them):
 *
 *   trigger_delivery   photo-eye → the capture worker handled the trigger telegram (the PLC's UDP send, that thread's loop)
 *   camera             → frame in host memory (appsrc push, GStreamer's threads, the appsink pull on libuv's pool, the copy)
 *   to_main            frame in host memory → the main thread took it (ring copy, the capture worker's post, the main loop)
 *   to_worker          → the inference worker started on it (the part loop, queueing behind the part before, the post)
 */
import type { LineTimingRange } from '../inspector/plc/line-timing.js';
import type { PartInstants } from '../inspector/station/part-timeline.js';

export interface Dist { p50: number; p99: number; max: number; count: number }

export const LINE_STAGES = ['trigger_to_frame', 'frame_to_inference_start', 'inference', 'decision', 'plc_write'] as const;
export type LineStage = typeof LINE_STAGES[number];
/** figures beside the stages, not adding up to the headline (see above) */
export const ASIDE = ['trigger_delivery', 'camera', 'to_main', 'to_worker', 'plc_write_call', 'plc_ack'] as const;
type Aside = typeof ASIDE[number];

export interface LineStages {
  /** every part whose result latched at the PLC (inspected or an explicit not-inspected reject), in time or late */
  photo_eye_to_latch_ms: Dist;
  /** the same over the inspected parts only (those with every stage) */
  photo_eye_to_latch_inspected_ms: Dist;
  line_stages_ms: Record<LineStage | Aside, Dist>;
  counts: {
    /** parts the photo-eye fired in the range */
    fired: number;
    latched: number;
    late_latched: number;
    /** fired parts with no result latched (the PLC's timeout rejected them) */
    no_latch: number;
    /** latched parts the station inspected and stamped (the stage figures' population) */
    inspected: number;
    /** stage intervals below zero: the clocks disagree (must be 0) */
    negative_intervals: number;
  };
}

/** Nearest-rank percentiles of the samples (sorts a copy). */
export function dist(samples: readonly number[]): Dist {
  const k = samples.length;
  if (k === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, count: 0 };
  const s = Float64Array.from(samples).sort();
  const at = (q: number): number => s[Math.min(k - 1, Math.max(0, Math.ceil(q * k) - 1))]!;
  return { p50: at(0.5), p99: at(0.99), max: s[k - 1]!, count: k };
}

const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

/** Line up the simulator's and the station's stamps part by part. */
export function lineStages(line: LineTimingRange, station: (partId: number) => PartInstants | null): LineStages {
  const origin = BigInt(line.originNs);
  const headline: number[] = [];
  const inspected: number[] = [];
  const stages: Record<LineStage | Aside, number[]> = {
    // in the order the report prints them: each split under the stage it splits
    trigger_to_frame: [], trigger_delivery: [], camera: [], frame_to_inference_start: [], to_main: [], to_worker: [],
    inference: [], decision: [], plc_write: [], plc_write_call: [], plc_ack: [],
  };
  let lateLatched = 0;
  let negative = 0;
  for (let i = 0; i < line.partIds.length; i++) {
    const latchOffset = line.latchNs[i];
    if (latchOffset === null || latchOffset === undefined) continue;
    const eye = origin + BigInt(line.photoEyeNs[i]!);
    const latch = origin + BigInt(latchOffset);
    headline.push(ms(eye, latch));
    if (line.late[i]) lateLatched++;
    const p = station(line.partIds[i]!);
    if (!p || p.inferStart === 0n || p.inferEnd === 0n) continue; // not inspected (its reject was written at once)
    const parts: Array<[LineStage, number]> = [
      ['trigger_to_frame', ms(eye, p.captured)], ['frame_to_inference_start', ms(p.captured, p.inferStart)],
      ['inference', ms(p.inferStart, p.inferEnd)], ['decision', ms(p.inferEnd, p.verdict)], ['plc_write', ms(p.verdict, latch)],
    ];
    for (const [k, v] of parts) { if (v < 0) negative++; stages[k].push(v); }
    if (p.triggered !== 0n) { stages.trigger_delivery.push(ms(eye, p.triggered)); stages.camera.push(ms(p.triggered, p.captured)); }
    if (p.delivered !== 0n) { stages.to_main.push(ms(p.captured, p.delivered)); stages.to_worker.push(ms(p.delivered, p.inferStart)); }
    stages.plc_write_call.push(ms(p.verdict, p.writeIssued));
    if (p.plcDone !== 0n) stages.plc_ack.push(ms(latch, p.plcDone));
    inspected.push(ms(eye, latch));
  }
  return {
    photo_eye_to_latch_ms: dist(headline),
    photo_eye_to_latch_inspected_ms: dist(inspected),
    line_stages_ms: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, dist(v)])) as LineStages['line_stages_ms'],
    counts: { fired: line.partIds.length, latched: headline.length, late_latched: lateLatched,
      no_latch: line.partIds.length - headline.length, inspected: inspected.length, negative_intervals: negative },
  };
}

/**
 * One CSV row per fired part, every stamp in ms after the first photo-eye (empty: not stamped), for
 * finding what the slow parts have in common (bench --parts-csv): the columns are the instants above.
 */
export function lineStampsCsv(line: LineTimingRange, station: (partId: number) => PartInstants | null): string {
  const origin = BigInt(line.originNs);
  const t0 = line.photoEyeNs[0] ?? 0;
  const at = (v: bigint): string => (v === 0n ? '' : (Number(v - origin - BigInt(t0)) / 1e6).toFixed(3));
  const rows = ['part_id,photo_eye,triggered,captured,delivered,infer_start,infer_end,verdict,write_issued,latched,late'];
  for (let i = 0; i < line.partIds.length; i++) {
    const p = station(line.partIds[i]!);
    const latch = line.latchNs[i];
    const stamps = p ? [p.triggered, p.captured, p.delivered, p.inferStart, p.inferEnd, p.verdict, p.writeIssued].map(at) : Array<string>(7).fill('');
    rows.push([line.partIds[i], ((line.photoEyeNs[i]! - t0) / 1e6).toFixed(3), ...stamps,
      latch === null || latch === undefined ? '' : ((latch - t0) / 1e6).toFixed(3), line.late[i] ? 1 : 0].join(','));
  }
  return rows.join('\n') + '\n';
}
