import { Command } from 'commander';
import { logger } from '../core/logger.js';
import { freePort } from '../core/free-port.js';
import { resolveConfig } from '../station/config.js';
import { Station } from '../station/station.js';
import { PlcSimProcess } from '../plc/plc-sim-process.js';
import { untilSignal } from './signals.js';
import { reviewDbPathFor } from '../review/review-db.js';
import { ensureDemoAccount } from '../review/demo-account.js';
import { replayLine } from './replay-line.js';
import { pinCommand } from '../server/tls.js';
import { demoBroker } from '../mqtt/demo-broker.js';

/**
 * `inspector demo`: the PLC simulator (own process) and a station, together, until Ctrl-C (or --for).
 * The simulated line fires parts at --rate on its own clock and triggers the station's replay
 * camera (`replay-triggered`) with each part's (Epoch, PartId); the station answers every part
 * to the PLC. Prints where to look, and at the end what the line did: parts accepted / rejected.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('run the PLC simulator (the line: parts at --rate, each triggering the camera) and a station')
    .option('--rate <r>', 'parts per second fired by the line', (v) => parseFloat(v), 20)
    .option('--port <n>', 'HTTP port', (v) => parseInt(v, 10), 8080)
    .option('--plc-port <n>', 'OPC UA port of the PLC simulator', (v) => parseInt(v, 10), 4840)
    .option('--gate-window-ms <ms>', 'PLC reject-gate window', (v) => parseInt(v, 10), 100)
    .option('--for <seconds>', 'stop after this many seconds (default: run until Ctrl-C)', (v) => parseFloat(v))
    .option('--vision-server [port]', 'serve the station as an OPC 40100 Machine Vision server (inspector/vision-server/README.md) on PORT (default 4843); demo: None + SignAndEncrypt, anonymous allowed on loopback')
    .option('--mqtt [url]', 'publish results as a Sparkplug B edge node (inspector/mqtt/README.md): to URL, else to a mosquitto started on a free loopback port')
    .action(async (o: { rate: number; port: number; plcPort: number; gateWindowMs: number; for?: number }) => {
      if (!(o.rate > 0)) throw new Error('--rate must be a positive number of parts per second');
      const triggerPort = await freePort('udp');
      const vs = (o as { visionServer?: string | boolean }).visionServer; // --vision-server [port]
      const visionPort = vs === undefined || vs === false ? null : (vs === true ? 4843 : parseInt(vs, 10));
      const broker = await demoBroker((o as { mqtt?: string | boolean }).mqtt, logger); // --mqtt
      const config = resolveConfig({
        camera: { template: 'replay-triggered', triggerPort },
        plc: { endpoint: `opc.tcp://127.0.0.1:${o.plcPort}`, security: { mode: 'None' } }, // the demo's own simulator on loopback
        server: { port: o.port },
        ...(broker ? { mqtt: { enabled: true, url: broker.url } } : {}),
        ...(visionPort ? { visionServer: { enabled: true, port: visionPort, securityModes: ['None' as const, 'SignAndEncrypt' as const], allowAnonymous: true } } : {}),
      });
      const line = replayLine(config.camera.folder);
      // the line interlocks on the station's Ready bit (Station.Ready + heartbeat), as a real line on its vision
      // system's: it holds until the station can judge parts, and again from the moment the station stops
      const plcSim = await PlcSimProcess.start({
        port: o.plcPort, gateWindowMs: o.gateWindowMs, lineRate: o.rate, triggerPort, items: line.items, readyInterlock: true,
        ...(line.defectiveItems ? { defectiveItems: line.defectiveItems } : {}),
      });
      let station: Station | null = null;
      try {
        const demo = await ensureDemoAccount(reviewDbPathFor(config.results.dbPath));
        station = await Station.start(config, logger); // sets Station.Ready last: the line starts then
        const t0 = Date.now();
        // HTTPS with the station's self-signed certificate (server/tls.ts): the browser asks once; the CLI pins the fingerprint
        const http = station.httpAddress ?? `https://127.0.0.1:${o.port}`;
        const fp = station.httpsFingerprint;
        process.stdout.write(`\nstation demo running: the line fires ${o.rate} parts/s, PLC simulator at ${plcSim.endpoint} (epoch ${plcSim.epoch})\n` +
          `  UI:      ${http}/   (log in as ${demo.username} / ${demo.password})\n  API:     ${http}/docs\n` +
          `  health:  ${http}/health\n  metrics: ${http}/metrics\n` +
          (fp ? `  HTTPS:   self-signed certificate, SHA-256 ${fp}\n           (the browser warns once: compare this fingerprint, then accept; the CLI: ${pinCommand(http, fp)})\n` : '') +
          (station.vision ? `  OPC 40100 vision server: ${station.vision.endpoint} (VisionSystem under Objects; Stop/StartContinuous switch inspection)\n` : '') +
          `  stop:    Ctrl-C\n\n`);
        const every = setInterval(() => {
          void plcSim.counters().then((c) => logger.info({ plc: { parts: c.Parts, accepted: c.Accepted, rejected: c.Rejected, timeout: c.RejectedTimeout },
            inspected: station?.loop.rec.parts }, 'line'), () => undefined);
        }, 5000);
        await (o.for ? new Promise((r) => setTimeout(r, o.for! * 1000)) : untilSignal());
        clearInterval(every);
        // the line stops first: every part it fired gets its verdict (or its not-inspected row) before the station stops
        await plcSim.stopLine();
        await station.stop();
        const seconds = (Date.now() - t0) / 1000;
        const { counters: c, truth } = await plcSim.truth();
        const rec = station.loop.rec;
        const lost = Object.values(rec.notInspected).reduce((a, b) => a + b, 0);
        station = null;
        process.stdout.write(`\ndemo: the line ran ${seconds.toFixed(1)} s: ${c.Parts} parts, ${c.Accepted} accepted, ${c.Rejected} rejected`
          + ` (${c.RejectedTimeout} without a result in time)\n`
          + `  station: ${rec.parts} inspected, ${lost} not inspected; PLC refused ${c.OrphanResults + c.WrongEpochResults} results\n`
          + (line.defectiveItems ? `  truth:   ${truth.defectiveParts} defective parts, ${truth.escapes} escaped; `
            + `${truth.goodParts} good parts, ${truth.goodRejected} rejected\n` : ''));
      } finally {
        await station?.stop();
        await plcSim.stop();
        await broker?.stop();
      }
    });
}
