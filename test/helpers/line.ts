/**
 * The simulated line for station tests: the PLC simulator's own clock fires the parts and
 * triggers the station's `replay-triggered` camera (see test/station-e2e.test.ts).
 *
 *   const triggerPort = await freePort('udp');
 *   const sim = new PlcSimulator({ port, ..., line: lineOptions({ rate: 12, triggerPort, folder }) });
 *   await sim.start();                        // the clock waits (autoStart: false)
 *   station = await Station.start(resolveConfig({ camera: triggeredCamera({ triggerPort, folder }), ... }), logger);
 *   sim.startLine();
 *   ...
 *   await stopLineAndCapture(station, sim);   // the last part triggered is accounted for, then capture stops
 */
import { readdirSync } from 'node:fs';
import type { LineOptions, PlcSimulator } from '../../inspector/plc/plc-simulator.js';
import type { Station } from '../../inspector/station/station.js';
import { until } from './wait.js';

/** The images of a replay folder, as the replay cache lists them. */
export function replayItems(folder: string): number {
  return readdirSync(folder).filter((f) => /\.(png|jpe?g)$/i.test(f)).length;
}

/** Line options that wait for startLine(): parts fired before the station runs would be rows of 'not_seen'. */
export function lineOptions(o: { rate: number; triggerPort: number; folder: string; maxParts?: number }): LineOptions {
  return { rate: o.rate, triggerPort: o.triggerPort, items: replayItems(o.folder), autoStart: false,
    ...(o.maxParts !== undefined ? { maxParts: o.maxParts } : {}) };
}

/** The camera section of a station on the triggered line. */
export function triggeredCamera(o: { triggerPort: number; folder: string; cacheDir?: string }) {
  return { template: 'replay-triggered' as const, folder: o.folder, triggerPort: o.triggerPort, cacheDir: o.cacheDir ?? 'var/replay-cache' };
}

/**
 * Stop the line, wait until the station has accounted for (inspected, or recorded as lost) the last
 * part the line triggered, then stop capture: no part is left inside the camera.
 */
export async function stopLineAndCapture(station: Station, sim: PlcSimulator, timeoutMs = 30_000): Promise<void> {
  sim.stopLine();
  const last = sim.lastPartId;
  await until(() => station.loop.identity.highestAccounted(sim.epoch) >= last, timeoutMs, `the station to account for part ${last}`);
  await station.stopCapture();
}
