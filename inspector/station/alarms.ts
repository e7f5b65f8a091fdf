/**
 * Alarms: named conditions that are raised and cleared, logged once on each
 * edge, and exported as the inspector_alarm gauge. Health reads them.
 */
import type { Logger } from '../core/logger.js';

export const Alarm = {
  CAMERA_DOWN: 'CAMERA_DOWN',
  MODEL_DOWN: 'MODEL_DOWN',
  PLC_LINK_DOWN: 'PLC_LINK_DOWN',
  /** sharpness fell below the calibrated band (knocked or defocused camera; calibration/image-checks.ts) */
  FOCUS_DRIFT: 'FOCUS_DRIFT',
  /** brightness left the calibrated band or too many pixels saturate (lamp, exposure) */
  EXPOSURE_DRIFT: 'EXPOSURE_DRIFT',
  /** the station's part ids and the PLC's disagree (stale epoch, a result the PLC did not expect, outcomes that differ) */
  PART_SYNC: 'PART_SYNC',
  /** a supervised worker died or missed its deadline and is being restarted */
  WORKER_RESTART: 'WORKER_RESTART',
  /** the MQTT broker connection of the Sparkplug edge node is lost or refused (results wait in the database; the line runs) */
  MQTT_DOWN: 'MQTT_DOWN',
  /** saved images near the retention budget (high-water mark) or the file system near full: raised before the disk fills */
  DISK_LOW: 'DISK_LOW',
} as const;
export type AlarmName = (typeof Alarm)[keyof typeof Alarm];

export class Alarms {
  private readonly raised = new Map<AlarmName, { since: number; detail: string }>();

  constructor(private readonly log: Logger, private readonly onChange: (name: AlarmName, raised: boolean) => void) {}

  set(name: AlarmName, raised: boolean, detail = ''): void {
    const was = this.raised.has(name);
    if (raised === was) {
      // still raised: keep its edge (no log, no metric change) but say why now (e.g. the PLC link's latest refusal)
      if (raised && detail) this.raised.get(name)!.detail = detail;
      return;
    }
    if (raised) {
      this.raised.set(name, { since: Date.now(), detail });
      this.log.error({ alarm: name, detail }, 'alarm raised');
    } else {
      const since = this.raised.get(name)?.since ?? Date.now();
      this.raised.delete(name);
      this.log.warn({ alarm: name, durationMs: Date.now() - since }, 'alarm cleared');
    }
    this.onChange(name, raised);
  }

  isRaised(name: AlarmName): boolean { return this.raised.has(name); }

  list(): string[] {
    return [...this.raised.entries()].map(([n, a]) => (a.detail ? `${n}: ${a.detail}` : n));
  }
}
