import { Command } from 'commander';
import { PlcSimProcess } from '../plc/plc-sim-process.js';
import { untilSignal } from './signals.js';

/** `inspector plc-sim`: the PLC simulator alone (point a station at it). */
export function plcSimCommand(): Command {
  return new Command('plc-sim')
    .description('run the PLC simulator (OPC UA server, photo-eye on UDP, gate windows)')
    .option('--port <n>', 'OPC UA port', (v) => parseInt(v, 10), 4840)
    .option('--photo-eye-port <n>', 'UDP port of the photo-eye', (v) => parseInt(v, 10), 4841)
    .option('--gate-window-ms <ms>', 'reject-gate window', (v) => parseInt(v, 10), 100)
    .action(async (o: { port: number; photoEyePort: number; gateWindowMs: number }) => {
      const sim = await PlcSimProcess.start(o);
      process.stdout.write(`PLC simulator at ${sim.endpoint}, photo-eye udp://127.0.0.1:${o.photoEyePort}\n`);
      await untilSignal();
      await sim.stop();
    });
}
