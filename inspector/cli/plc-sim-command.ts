import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { PlcSimProcess } from '../plc/plc-sim-process.js';
import { untilSignal } from './signals.js';

const int = (min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`an integer in [${min}, ${max}]`);
  return n;
};
const rate = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 10_000) throw new InvalidArgumentError('a number of parts/s in [0, 10000]');
  return n;
};

interface PlcSimOpts {
  port: number; photoEyePort: number; gateWindowMs: number; lineRate: number; triggerPort: number; items?: number;
  maxParts?: number; defectiveItemsFile?: string; linePaused: boolean;
}

/**
 * `inspector plc-sim`: the PLC simulator alone (point a station at it). With the defaults it is the
 * line a default station (`inspector run`, camera `replay-triggered` on trigger port 4842) expects:
 * it fires 20 parts/s on its own clock and triggers the camera with each part's (Epoch, PartId).
 */
export function plcSimCommand(): Command {
  return new Command('plc-sim')
    .description('run the PLC simulator (OPC UA server, line clock triggering the camera, photo-eye on UDP, gate windows)')
    .option('--port <n>', 'OPC UA port', int(1, 65535), 4840)
    .option('--photo-eye-port <n>', 'UDP port of the photo-eye (one datagram = one part; 0: any free port)', int(0, 65535), 4841)
    .option('--gate-window-ms <ms>', 'reject-gate window', int(1, 60_000), 100)
    .option('--line-rate <r>', "parts per second fired by the line's own clock (0: photo-eye only)", rate, 20)
    .option('--trigger-port <n>', "UDP port of the station camera's trigger input (replay-triggered camera.triggerPort)", int(1, 65535), 4842)
    .option('--items <n>', 'distinct parts on the line (the replay folder\'s images): item = (PartId - 1) % items', int(1, 1_000_000))
    .option('--max-parts <n>', 'stop the line clock after this many parts', int(1, 2 ** 31))
    .option('--defective-items-file <file>', 'JSON array of the defective item indexes (counts escapes in the truth log)')
    .option('--line-paused', 'do not start the line clock (parts come from the photo-eye only)', false)
    .action(async (o: PlcSimOpts) => {
      const defectiveItems = o.defectiveItemsFile ? JSON.parse(readFileSync(o.defectiveItemsFile, 'utf8')) as number[] : undefined;
      const sim = await PlcSimProcess.start({
        port: o.port, photoEyePort: o.photoEyePort, gateWindowMs: o.gateWindowMs, lineRate: o.lineRate, triggerPort: o.triggerPort,
        linePaused: o.linePaused,
        ...(o.items !== undefined ? { items: o.items } : {}), ...(o.maxParts !== undefined ? { maxParts: o.maxParts } : {}),
        ...(defectiveItems ? { defectiveItems } : {}),
      });
      const line = o.lineRate > 0 && !o.linePaused ? `line ${o.lineRate} parts/s` : 'line clock stopped';
      process.stdout.write(`PLC simulator at ${sim.endpoint} (epoch ${sim.epoch}), ${line}, triggers to udp://127.0.0.1:${o.triggerPort}, `
        + `photo-eye udp://127.0.0.1:${sim.photoEyePort ?? o.photoEyePort}\n`);
      await untilSignal();
      await sim.stop();
    });
}
