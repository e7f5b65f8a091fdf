/**
 * `inspector` command line (commander). Each subcommand lives in its own file.
 */
import { Command } from 'commander';
import { runCommand } from './run-command.js';
import { demoCommand } from './demo-command.js';
import { plcSimCommand } from './plc-sim-command.js';
import { exportCommand } from './export-command.js';
import { retentionCommand } from './retention-command.js';
import { evalCommand } from './eval-command.js';
import { retuneCommand } from './retune-command.js';
import { calibrateCommand } from './calibrate-command.js';
import { teachCommand } from './teach-command.js';
import { accountCommands } from './users-command.js';
import { modelsCommand } from './models-command.js';
import { keysCommand } from './keys-command.js';

const program = new Command()
  .name('inspector')
  .description('Inline visual inspection appliance: camera → ONNX model → PLC over OPC UA')
  .showHelpAfterError();

program.addCommand(runCommand());
program.addCommand(demoCommand());
program.addCommand(plcSimCommand());
program.addCommand(exportCommand());
program.addCommand(retentionCommand());
program.addCommand(evalCommand());
program.addCommand(retuneCommand());
program.addCommand(calibrateCommand());
program.addCommand(teachCommand());
for (const c of accountCommands()) program.addCommand(c);
program.addCommand(modelsCommand());
program.addCommand((await import('./pki-command.js')).pkiCommand());
program.addCommand(keysCommand());
program.addCommand((await import('./backup-command.js')).backupCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error & { code?: string };
  process.stderr.write(`inspector: ${e.code ?? 'ERROR'}: ${e.message}\n`);
  process.exit(1);
}
