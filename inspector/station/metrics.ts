/**
 * Prometheus metrics of a station (prom-client, own registry).
 *
 * Observing is cheap (a bucket increment); counters kept by other parts
 * (capture drops, PLC errors, image drops) are read at scrape time through
 * collect() callbacks, so the hot path does not double-count anything.
 */
import client from 'prom-client';
import type { LineReport } from '../server/station-view.js';

const STAGES = ['dispatch', 'inference', 'registration', 'frame_to_verdict', 'plc_write'] as const;
export type Stage = (typeof STAGES)[number];

/** Buckets in seconds from 0.25 ms to 250 ms: the interesting range is 0.5–10 ms. */
const LATENCY_BUCKETS = [0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005,
  0.0075, 0.01, 0.02, 0.05, 0.1, 0.25];

export interface CountersSnapshot {
  camera: { frames: number; dropped: number; restarts: number; errors: number };
  plc: { writes: number; writeErrors: number; reconnects: number; heartbeats: number };
  images: { offered: number; written: number; dropped: number; failed: number };
}

export class StationMetrics {
  readonly registry = new client.Registry();
  private readonly stage: client.Histogram<'stage'>;
  private readonly parts: client.Counter;
  private readonly verdicts: client.Counter<'verdict' | 'code'>;
  private readonly overBudget: client.Counter;
  private readonly alarm: client.Gauge<'alarm'>;
  private readonly imageCheck: client.Gauge<'check'>;
  private readonly calibration: client.Gauge<'undistort'>;
  private readonly defectClass: client.Counter<'class'>;
  /** per-stage children resolved once: observe() does no label lookup per part */
  private readonly stageChild: Record<Stage, client.Histogram.Internal<'stage'>>;

  constructor(snapshot: () => CountersSnapshot, labels: { station: string }) {
    this.registry.setDefaultLabels(labels);
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    this.stage = new client.Histogram({
      name: 'inspector_stage_seconds', help: 'Per-part latency of each stage, from frame capture',
      labelNames: ['stage'], buckets: LATENCY_BUCKETS, registers: [this.registry],
    });
    this.stageChild = Object.fromEntries(STAGES.map((s) => [s, this.stage.labels(s)])) as Record<Stage, client.Histogram.Internal<'stage'>>;
    this.parts = new client.Counter({ name: 'inspector_parts_total', help: 'Parts inspected', registers: [this.registry] });
    this.verdicts = new client.Counter({
      name: 'inspector_verdicts_total', help: 'Verdicts by outcome and result code',
      labelNames: ['verdict', 'code'], registers: [this.registry],
    });
    this.overBudget = new client.Counter({
      name: 'inspector_over_budget_total', help: 'Verdicts that took longer than the station budget', registers: [this.registry],
    });
    this.alarm = new client.Gauge({ name: 'inspector_alarm', help: '1 while an alarm is raised', labelNames: ['alarm'], registers: [this.registry] });
    this.imageCheck = new client.Gauge({ name: 'inspector_image_check', help: 'Focus/exposure checks of the last sampled frame (tenengrad, laplacian_var, mean, saturated_fraction, dark_fraction)',
      labelNames: ['check'], registers: [this.registry] });
    this.defectClass = new client.Counter({ name: 'inspector_rejects_by_class_total',
      help: 'Rejects of multi-class models by their worst defect class (per-class thresholds)', labelNames: ['class'], registers: [this.registry] });
    this.calibration = new client.Gauge({ name: 'inspector_calibration_version',
      help: 'Calibration version in force (0: uncalibrated); label undistort: whether the live model undistorts with its lens',
      labelNames: ['undistort'], registers: [this.registry] });

    const fromSnapshot = (name: string, help: string, pick: (s: CountersSnapshot) => number) =>
      new client.Counter({ name, help, registers: [this.registry], collect() { this.reset(); this.inc(pick(snapshot())); } });
    fromSnapshot('inspector_frames_total', 'Frames that reached the station', (s) => s.camera.frames);
    fromSnapshot('inspector_frames_dropped_total', 'Frames replaced before inference (latest frame wins)', (s) => s.camera.dropped);
    fromSnapshot('inspector_camera_restarts_total', 'Camera pipeline restarts', (s) => s.camera.restarts);
    fromSnapshot('inspector_camera_errors_total', 'Camera pipeline errors', (s) => s.camera.errors);
    fromSnapshot('inspector_plc_writes_total', 'Result writes acknowledged by the PLC', (s) => s.plc.writes);
    fromSnapshot('inspector_plc_errors_total', 'Result writes that failed or were not sent', (s) => s.plc.writeErrors);
    fromSnapshot('inspector_plc_reconnects_total', 'PLC link reconnections', (s) => s.plc.reconnects);
    fromSnapshot('inspector_images_dropped_total', 'Images not written because the bounded queue was full', (s) => s.images.dropped);
    fromSnapshot('inspector_images_written_total', 'Images written to disk', (s) => s.images.written);
  }

  observeStage(stage: Stage, ms: number): void {
    this.stageChild[stage].observe(ms / 1000);
  }

  countPart(verdict: 'pass' | 'reject', code: number, overBudget: boolean): void {
    this.parts.inc();
    this.verdicts.inc({ verdict, code: String(code) });
    if (overBudget) this.overBudget.inc();
  }

  /** the capture worker's focus/exposure sample (about once a second) */
  setImageChecks(c: { tenengrad: number; laplacianVar: number; mean: number; saturatedFraction: number; darkFraction: number }): void {
    this.imageCheck.set({ check: 'tenengrad' }, c.tenengrad);
    this.imageCheck.set({ check: 'laplacian_var' }, c.laplacianVar);
    this.imageCheck.set({ check: 'mean' }, c.mean);
    this.imageCheck.set({ check: 'saturated_fraction' }, c.saturatedFraction);
    this.imageCheck.set({ check: 'dark_fraction' }, c.darkFraction);
  }

  /** a multi-class reject's worst class (rejects only) */
  countDefectClass(name: string): void {
    // one child counter per class, made once: no labels object per part
    let child = this.defectClassChildren.get(name);
    if (!child) { child = this.defectClass.labels(name); this.defectClassChildren.set(name, child); }
    child.inc();
  }
  private readonly defectClassChildren = new Map<string, { inc(): void }>();

  /** the calibration the live model runs with (set at start and after every re-load) */
  setCalibration(version: number | null, undistort: boolean): void {
    this.calibration.reset();
    this.calibration.set({ undistort: undistort ? 'true' : 'false' }, version ?? 0);
  }

  setAlarm(name: string, raised: boolean): void {
    this.alarm.set({ alarm: name }, raised ? 1 : 0);
  }

  /**
   * Station vs PLC, read at scrape time from the live objects (health.ts lineReport): the PLC's
   * outcome counters as gauges (they restart from 0 with a new PLC epoch), the parts the station
   * did not inspect by reason, and the part-sync errors by kind. Until this is called (or while
   * `line` answers null) these metrics have no samples. Nothing here runs per part.
   */
  watchLine(line: () => LineReport | null): void {
    if (this.lineSource) { this.lineSource = line; return; } // the metrics are registered once
    this.lineSource = line;
    const source = () => this.lineSource?.() ?? null;
    new client.Gauge({
      name: 'inspector_plc_outcomes',
      help: 'The PLC\'s outcome counters of its current epoch, read back from the PLC (accepted, rejected incl. timeout, timeout, late, sequence_error, refused = wrong epoch + orphan, duplicate)',
      labelNames: ['outcome'], registers: [this.registry],
      collect() {
        this.reset();
        const p = source()?.plc;
        if (!p) return;
        this.set({ outcome: 'accepted' }, p.accepted);
        this.set({ outcome: 'rejected' }, p.rejected);
        this.set({ outcome: 'timeout' }, p.timeout);
        this.set({ outcome: 'late' }, p.late);
        this.set({ outcome: 'sequence_error' }, p.sequenceErrors);
        this.set({ outcome: 'refused' }, p.refused);
        this.set({ outcome: 'duplicate' }, p.duplicates);
      },
    });
    const plcGauge = (name: string, help: string, pick: (p: NonNullable<LineReport['plc']>) => number) => new client.Gauge({
      name, help, registers: [this.registry],
      collect() { this.reset(); const p = source()?.plc; if (p) this.set(pick(p)); },
    });
    plcGauge('inspector_plc_parts', 'Parts the PLC\'s photo-eye saw in its current epoch', (p) => p.parts);
    plcGauge('inspector_plc_epoch', 'The PLC\'s part-numbering epoch (Line.Epoch)', (p) => p.epoch);
    plcGauge('inspector_plc_last_part_id', 'The last PartId the PLC triggered in its epoch (Line.LastPartId)', (p) => p.lastPartId);
    new client.Counter({
      name: 'inspector_parts_not_inspected_total', help: 'Parts recorded without a model verdict, by reason',
      labelNames: ['reason'], registers: [this.registry],
      collect() {
        this.reset();
        const l = source();
        if (!l) return;
        for (const [reason, n] of Object.entries(l.station.notInspected)) this.inc({ reason }, n);
      },
    });
    new client.Counter({
      name: 'inspector_part_sync_errors_total',
      help: 'Station/PLC part-sync errors: held_back (a part whose numbering was not the PLC\'s current one), refused (results the PLC refused: wrong epoch or a part it did not trigger), mismatch (an outcome that disagrees with what the station sent); any of them raises PART_SYNC',
      labelNames: ['kind'], registers: [this.registry],
      collect() {
        this.reset();
        const l = source();
        if (!l) return;
        this.inc({ kind: 'held_back' }, l.station.partSyncErrors);
        this.inc({ kind: 'refused' }, l.readBack.refusals);
        this.inc({ kind: 'mismatch' }, l.readBack.mismatches);
      },
    });
    new client.Counter({
      name: 'inspector_plc_outcome_read_errors_total', help: 'Failed reads of the PLC\'s counters and outcome log', registers: [this.registry],
      collect() { this.reset(); const l = source(); if (l) this.inc(l.readBack.readErrors); },
    });
  }
  private lineSource: (() => LineReport | null) | null = null;

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
