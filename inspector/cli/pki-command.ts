/**
 * The station's OPC UA certificates (plc/plc-security.ts), straight on its PKI
 * folder (`plc.certificateFolder` of `--config`, or `--folder DIR`):
 *   inspector pki list                          own, trusted and rejected certificates
 *   inspector pki trust <thumbprint|file>       trust the PLC's certificate (from rejected/, or a file)
 *   inspector pki reject <thumbprint>           stop trusting it
 * The link never trusts a PLC by itself: its first attempt stores an unknown
 * PLC certificate in rejected/ and says its thumbprint (lastError, the
 * PLC_LINK_DOWN alarm); a running station uses a trusted one from its next retry.
 * `--folder <simulator cert folder>/server` does the same for the PLC
 * simulator's side (the station's certificate, with --explicit-trust).
 */
import { Command } from 'commander';
import { resolveConfig } from '../station/config.js';
import { rejectCertificate, storeEntries, trustCertificate, type PkiEntry } from '../plc/plc-security.js';

interface FolderOpts { config?: string; folder?: string }

function folderOf(o: FolderOpts): string {
  return o.folder ?? resolveConfig({}, o.config).plc.certificateFolder;
}

const withFolder = (c: Command): Command => c
  .option('-c, --config <file>', 'station config: its plc.certificateFolder')
  .option('--folder <dir>', 'PKI folder (overrides --config)');

function line(e: PkiEntry): string {
  return `${e.status}\t${e.thumbprint}\t${e.notAfter.toISOString().slice(0, 10)}${e.expired ? ' EXPIRED' : ''}\t${e.subject}`;
}

export function pkiCommand(): Command {
  const pki = new Command('pki').description('OPC UA certificates of the PLC link: list, trust or reject the PLC\'s certificate');
  pki.addCommand(withFolder(new Command('list'))
    .description('the station\'s own certificate and the trusted and rejected PLC certificates (status, SHA-1 thumbprint, valid until, subject)')
    .option('--json', 'JSON lines')
    .action((o: FolderOpts & { json?: boolean }) => {
      const folder = folderOf(o);
      const entries = storeEntries(folder);
      if (o.json) {
        for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
        return;
      }
      if (entries.length === 0) process.stdout.write(`no certificates in ${folder} (the station makes its own at its first start)\n`);
      for (const e of entries) process.stdout.write(`${line(e)}\n`);
    }));
  pki.addCommand(withFolder(new Command('trust'))
    .description('trust a certificate: a thumbprint (or a unique prefix, 8+ hex digits) from rejected/, or a certificate file (PEM or DER)')
    .argument('<thumbprint|file>')
    .action(async (what: string, o: FolderOpts) => {
      const e = await trustCertificate(folderOf(o), what);
      process.stdout.write(`${line(e)}\n`);
    }));
  pki.addCommand(withFolder(new Command('reject'))
    .description('reject a trusted certificate by thumbprint: the link refuses that PLC from its next attempt')
    .argument('<thumbprint>')
    .action(async (what: string, o: FolderOpts) => {
      const e = await rejectCertificate(folderOf(o), what);
      process.stdout.write(`${line(e)}\n`);
    }));
  return pki;
}
