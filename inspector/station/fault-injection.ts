/**
 * Faults injected into a running station, for the soak (scripts/soak.ts) only.
 *
 * Enabled when the station runs as a forked child with INSPECTOR_FAULT_INJECTION=1
 * (never in a service unit): the parent sends { type: 'fault', fault } over the IPC
 * channel and gets { type: 'fault-done', fault, ok, detail } back. Each fault acts
 * for real on the part that fails in the field:
 *  - inference-kill: the live inference worker's thread exits (process.exit in it);
 *    its supervisor respawns it, parts meanwhile are fail-safe rejects;
 *  - camera-loss: the capture worker dies (the camera is gone); its supervisor brings
 *    it back, the parts triggered meanwhile are rows with reason camera_error/not_seen;
 *  - model-swap: the live model is re-loaded from its package and swapped between two
 *    parts, as a promotion does (ModelLifecycle.reloadForCalibration).
 * The parent also gets { type: 'ready', runId } once the station runs, and may send
 * { type: 'stop' } for a graceful stop.
 */
import type { Logger } from '../core/logger.js';
import type { Station } from './station.js';

export const FAULT_INJECTION_ENV = 'INSPECTOR_FAULT_INJECTION';
export type StationFault = 'inference-kill' | 'camera-loss' | 'model-swap';

export function faultInjectionEnabled(): boolean {
  return process.env[FAULT_INJECTION_ENV] === '1' && typeof process.send === 'function';
}

async function inject(station: Station, fault: StationFault): Promise<string> {
  switch (fault) {
    case 'inference-kill':
      station.runner.debugCrash();
      return `inference worker of ${station.runner.modelName}@${station.runner.modelVersion} killed`;
    case 'camera-loss':
      station.source.debugKill(); // the capture worker crashes (its pipeline stopped first); its supervisor respawns it
      return 'capture worker killed';
    case 'model-swap': {
      const r = await station.models.reloadForCalibration('fault injection: model swap');
      return `live model re-loaded and swapped: ${JSON.stringify(r)}`;
    }
    default:
      throw new Error(`unknown fault ${String(fault)}`);
  }
}

/** Listen for faults from the parent (a no-op unless enabled). `onStop` runs on { type: 'stop' }. */
export function listenForFaults(station: Station, log: Logger, onStop: () => void): void {
  if (!faultInjectionEnabled()) return;
  const send = (m: Record<string, unknown>): void => { if (process.connected) process.send!(m); };
  process.on('message', (raw: unknown) => {
    const m = raw as { type?: string; fault?: StationFault };
    if (m?.type === 'stop') { onStop(); return; }
    if (m?.type !== 'fault' || !m.fault) return;
    const fault = m.fault;
    log.warn({ fault }, 'fault injected');
    inject(station, fault).then(
      (detail) => send({ type: 'fault-done', fault, ok: true, detail }),
      (err: unknown) => send({ type: 'fault-done', fault, ok: false, detail: (err as Error).message }),
    );
  });
  send({ type: 'ready', runId: station.runId, http: station.httpAddress });
}
