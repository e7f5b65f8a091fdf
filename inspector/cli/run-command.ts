import { Command } from 'commander';
import { logger } from '../core/logger.js';
import { resolveConfig } from '../station/config.js';
import { Station } from '../station/station.js';
import { SystemdNotifier, partLoopLiveness } from '../station/systemd-notify.js';
import { untilSignal } from './signals.js';
import { listenForFaults } from '../station/fault-injection.js';

/** The part loop counts as stuck after this long with frames arriving and none dealt with (see partLoopLiveness). */
const STALL_MS = 10_000;

/**
 * `inspector run --config station.json`: run a station until SIGINT/SIGTERM.
 * Under systemd (deploy/systemd/inline-inspector.service) it tells systemd when it
 * is ready and stopping, and pings the watchdog while its part loop makes progress.
 */
export function runCommand(): Command {
  return new Command('run')
    .description('run the station from a config file')
    .option('-c, --config <file>', 'station config (JSON); defaults are used for what it leaves out')
    .action(async (opts: { config?: string }) => {
      const config = resolveConfig({}, opts.config);
      const station = await Station.start(config, logger);
      const status = (): string => {
        const h = station.health();
        return `${h.status}: ${h.parts} parts; camera ${h.camera.state} (${h.camera.frames} frames), model ${h.model.name}@${h.model.version} ${h.model.state}, plc ${h.plc.state}` +
          (h.alarms.length ? `; alarms: ${h.alarms.join('; ')}` : '');
      };
      const notifier = new SystemdNotifier({
        // frames from the camera against frames the part loop dealt with (a verdict, or held back: PART_SYNC)
        isAlive: partLoopLiveness(() => ({
          frames: station.health().camera.frames, handled: station.loop.rec.parts + station.loop.rec.partSyncErrors,
        }), STALL_MS),
        status,
        logger: logger.child({ mod: 'systemd' }),
      });
      notifier.ready(status());
      let stopAsked: (v: NodeJS.Signals) => void = () => undefined;
      const asked = new Promise<NodeJS.Signals>((resolve) => { stopAsked = resolve; });
      listenForFaults(station, logger.child({ mod: 'faults' }), () => stopAsked('SIGTERM')); // soak only (INSPECTOR_FAULT_INJECTION=1)
      const sig = await Promise.race([untilSignal(), asked]);
      notifier.stopping(`stopping (${sig}): draining the last verdicts`);
      await station.stop();
      await notifier.close();
      if (process.connected) process.disconnect(); // a forked station (soak): the IPC channel would keep it alive
    });
}
