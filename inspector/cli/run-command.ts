import { Command } from 'commander';
import { logger } from '../core/logger.js';
import { resolveConfig } from '../station/config.js';
import { Station } from '../station/station.js';
import { untilSignal } from './signals.js';

/** `inspector run --config station.json`: run a station until SIGINT/SIGTERM. */
export function runCommand(): Command {
  return new Command('run')
    .description('run the station from a config file')
    .option('-c, --config <file>', 'station config (JSON); defaults are used for what it leaves out')
    .action(async (opts: { config?: string }) => {
      const config = resolveConfig({}, opts.config);
      const station = await Station.start(config, logger);
      await untilSignal();
      await station.stop();
    });
}
