/**
 * The benchmark's per-part line-up of the PLC's and the station's stamps
 * (scripts/line-stages.ts): stages that add up to the headline, the splits of the
 * first two stages, parts without a latch or not inspected, and clock disagreement.
 */
import { describe, expect, it } from 'vitest';
import { lineStages, dist } from '../scripts/line-stages.js';
import { PartTimeline } from '../inspector/station/part-timeline.js';

const ORIGIN = 1_000_000_000n;
const ns = (ms: number): bigint => ORIGIN + BigInt(Math.round(ms * 1e6));

describe('lineStages', () => {
  it('splits each part at every thread hand-over, and the stages add up to photo-eye → latched', () => {
    const timeline = new PartTimeline(16);
    // part 1: eye 0, trigger handled 0.2, captured 1.0, delivered 1.5, inference 2.0-3.0, verdict 3.25, write 3.5, latch 4.0, ack 4.5
    timeline.judged(7, 1, { triggeredNs: ns(0.2), capturedNs: ns(1), deliveredNs: ns(1.5) }, ns(2), ns(3), ns(3.25), ns(3.5));
    timeline.acknowledged(7, 1, ns(4.5));
    // part 2: a free-running frame (no trigger or delivery stamps), eye 10, latched late at 130
    timeline.judged(7, 2, { capturedNs: ns(12) }, ns(13), ns(15), ns(16), ns(16.5));
    // part 3: not inspected (its reject was written at once): counted in the headline only
    timeline.judged(7, 3, { capturedNs: ns(21) }, 0n, 0n, ns(21.5), ns(21.6));
    const line = {
      originNs: ORIGIN.toString(), partIds: [1, 2, 3, 4],
      photoEyeNs: [0, 10e6, 20e6, 30e6], latchNs: [4e6, 130e6, 22e6, null], late: [false, true, false, false],
    };
    const r = lineStages(line, (id) => timeline.get(7, id));
    expect(r.counts).toEqual({ fired: 4, latched: 3, late_latched: 1, no_latch: 1, inspected: 2, negative_intervals: 0 });
    expect(r.photo_eye_to_latch_ms.count).toBe(3);
    expect(r.photo_eye_to_latch_ms.max).toBeCloseTo(120, 9);
    expect(r.photo_eye_to_latch_inspected_ms.count).toBe(2);
    const s = r.line_stages_ms;
    // part 1 alone has the splits
    expect(s.trigger_delivery).toMatchObject({ count: 1, max: 0.2 });
    expect(s.camera.count).toBe(1);
    expect(s.camera.max).toBeCloseTo(0.8, 9);
    expect(s.to_main).toMatchObject({ count: 1, max: 0.5 });
    expect(s.to_worker).toMatchObject({ count: 1, max: 0.5 });
    expect(s.plc_ack).toMatchObject({ count: 1, max: 0.5 });
    // both inspected parts have the stages; part 2's add up to its 120 ms
    expect(s.trigger_to_frame).toMatchObject({ count: 2, max: 2 });
    expect(s.plc_write.max).toBeCloseTo(114, 9);
    const part2 = s.trigger_to_frame.max + s.frame_to_inference_start.max + s.inference.max + s.decision.max + s.plc_write.max;
    expect(part2).toBeCloseTo(120, 9);
    // the splits add up to the stage they split (part 1)
    expect(s.trigger_delivery.max + s.camera.max).toBeCloseTo(s.trigger_to_frame.p50, 9); // part 1 is the smaller of the two: its 1 ms
  });

  it('counts intervals below zero: the two clocks disagree', () => {
    const timeline = new PartTimeline(4);
    timeline.judged(1, 1, { triggeredNs: ns(0.5), capturedNs: ns(0.4), deliveredNs: ns(0.6) }, ns(1), ns(2), ns(3), ns(3));
    const r = lineStages({ originNs: ORIGIN.toString(), partIds: [1], photoEyeNs: [1e6], latchNs: [5e6], late: [false] },
      (id) => timeline.get(1, id));
    // photo-eye (1.0) after the capture (0.4): trigger_to_frame is negative
    expect(r.counts.negative_intervals).toBe(1);
    expect(r.line_stages_ms.trigger_to_frame.max).toBeCloseTo(-0.6, 9);
  });
});

describe('dist', () => {
  it('takes nearest-rank percentiles', () => {
    const d = dist(Array.from({ length: 200 }, (_, i) => 200 - i));
    expect(d).toEqual({ p50: 100, p99: 198, max: 200, count: 200 });
    expect(dist([]).count).toBe(0);
  });
});
