import { Command } from 'commander';
import { logger } from '../core/logger.js';
import { freePort } from '../core/free-port.js';
import { resolveConfig } from '../station/config.js';
import { Station } from '../station/station.js';
import { PlcSimProcess } from '../plc/plc-sim-process.js';
import { untilSignal } from './signals.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { ensureDemoAccount } from '../review/demo-account.js';

/**
 * `inspector demo`: the PLC simulator (own process) and a station fed by the
 * replay camera, together, until Ctrl-C. Prints where to look.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('run the PLC simulator and a station on the replay camera')
    .option('--rate <r>', 'parts per second', (v) => parseFloat(v), 20)
    .option('--port <n>', 'HTTP port', (v) => parseInt(v, 10), 8080)
    .option('--plc-port <n>', 'OPC UA port of the PLC simulator', (v) => parseInt(v, 10), 4840)
    .option('--gate-window-ms <ms>', 'PLC reject-gate window', (v) => parseInt(v, 10), 100)
    .option('--for <seconds>', 'stop after this many seconds (default: run until Ctrl-C)', (v) => parseFloat(v))
    .action(async (o: { rate: number; port: number; plcPort: number; gateWindowMs: number; for?: number }) => {
      const photoEyePort = await freePort('udp');
      const plcSim = await PlcSimProcess.start({ port: o.plcPort, photoEyePort, gateWindowMs: o.gateWindowMs });
      let station: Station | null = null;
      try {
        const config = resolveConfig({
          camera: { template: 'replay', rate: o.rate, photoEyePort },
          plc: { endpoint: plcSim.endpoint },
          server: { port: o.port },
        });
        const demo = await ensureDemoAccount(reviewDbPathFor(config.results.dbPath));
        station = await Station.start(config, logger);
        const http = `http://${station.httpAddress?.replace(/^https?:\/\//, '') ?? `127.0.0.1:${o.port}`}`;
        process.stdout.write(`\nstation demo running: ${o.rate} parts/s, PLC simulator at ${plcSim.endpoint}\n` +
          `  UI:      ${http}/   (log in as ${demo.username} / ${demo.password})\n  API:     ${http}/docs\n` +
          `  health:  ${http}/health\n  metrics: ${http}/metrics\n  stop:    Ctrl-C\n\n`);
        const every = setInterval(() => {
          void plcSim.counters().then((c) => logger.info({ plc: c, parts: station?.loop.rec.parts }, 'line'));
        }, 5000);
        await (o.for ? new Promise((r) => setTimeout(r, o.for! * 1000)) : untilSignal());
        clearInterval(every);
      } finally {
        await station?.stop();
        await plcSim.stop();
      }
    });
}
