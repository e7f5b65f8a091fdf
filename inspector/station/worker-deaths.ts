/**
 * Every supervised worker's death is an alarm and a metric (core/supervised-worker.ts).
 *
 * Hosts emit 'worker-death' ({ worker?, reason }) and 'worker-ready' when the
 * replacement is up; this counts each death in `inspector_worker_deaths_total{worker}`
 * and holds WORKER_RESTART raised from a death until that worker is ready again.
 * Kept apart from metrics.ts so that hosts are wired in one line each.
 */
import type { EventEmitter } from 'node:events';
import client from 'prom-client';
import { Alarm, type Alarms } from './alarms.js';

export class WorkerDeaths {
  private readonly deaths: client.Counter<'worker'>;
  /** workers dead and not ready again */
  private readonly down = new Map<string, string>();
  /** deaths counted by this station, by worker (for health and tests) */
  readonly counts = new Map<string, number>();

  constructor(registry: client.Registry, private readonly alarms: Alarms) {
    this.deaths = new client.Counter({
      name: 'inspector_worker_deaths_total', help: 'Supervised worker deaths (crash, hang killed, exit), by worker; each is restarted with backoff',
      labelNames: ['worker'], registers: [registry],
    });
  }

  /** Wire a host that emits 'worker-death' and 'worker-ready'. */
  watch(name: string, host: EventEmitter): void {
    host.on('worker-death', (d: { worker?: string; reason?: string }) => this.died(d.worker ?? name, d.reason ?? 'unknown'));
    host.on('worker-ready', (d?: { worker?: string }) => this.ready(d?.worker ?? name));
  }

  died(worker: string, reason: string): void {
    this.deaths.inc({ worker });
    this.counts.set(worker, (this.counts.get(worker) ?? 0) + 1);
    this.down.set(worker, reason);
    this.raise();
  }

  ready(worker: string): void {
    if (!this.down.delete(worker)) return;
    if (this.down.size === 0) this.alarms.set(Alarm.WORKER_RESTART, false);
    else this.raise();
  }

  private raise(): void {
    const detail = [...this.down].map(([w, r]) => `${w}: ${r}`).join('; ');
    this.alarms.set(Alarm.WORKER_RESTART, false); // re-raise with the current detail
    this.alarms.set(Alarm.WORKER_RESTART, true, detail);
  }
}
