/**
 * One pino logger for the appliance. Child loggers per concern:
 *   const log = logger.child({ mod: 'capture' });
 * Level from INSPECTOR_LOG_LEVEL (default 'info'; tests default to 'warn').
 */
import { pino } from 'pino';

const defaultLevel = process.env.VITEST ? 'warn' : 'info';

export const logger = pino({
  name: 'inspector',
  level: process.env.INSPECTOR_LOG_LEVEL ?? defaultLevel,
  base: { pid: process.pid },
});

export type Logger = typeof logger;
