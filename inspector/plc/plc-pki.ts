/**
 * The station's PKI folder and the certificates in it (`inspector pki list | trust | reject`,
 * cli/pki-command.ts): reading a certificate, listing own/, trusted/ and rejected/, and
 * trusting or rejecting one.
 *
 * Separate from plc-security.ts because it is file-system bookkeeping an operator's
 * command runs as much as the link: nothing here opens a connection or chooses security.
 * The link's trust check (plc-security-refusals.ts) reads the same folder through it.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createError from '@fastify/error';
import { OPCUACertificateManager } from 'node-opcua';

// ------------------------------------------------------------ certificates

export interface CertificateInfo {
  /** SHA-1 of the DER, lower-case hex: node-opcua's file names carry it as [thumbprint] */
  thumbprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
}

/** DER or PEM (the first certificate of a chain). */
export function certificateInfo(data: Buffer | string): CertificateInfo {
  const x = new X509Certificate(data);
  return {
    thumbprint: x.fingerprint.replace(/:/g, '').toLowerCase(),
    subject: x.subject.replace(/\n/g, ', '),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    der: x.raw,
  };
}

export function validityProblem(info: CertificateInfo, now = new Date()): string | null {
  if (now > info.notAfter) return `expired on ${info.notAfter.toISOString()}`;
  if (now < info.notBefore) return `not valid before ${info.notBefore.toISOString()}`;
  return null;
}

// ------------------------------------------------------------ the PKI folder

export const PkiCertificateUnknownError = createError<[string]>(
  'INSPECTOR_PKI_UNKNOWN_CERTIFICATE', 'No certificate matches %s', 404);

export interface PkiEntry extends Omit<CertificateInfo, 'der'> {
  status: 'own' | 'trusted' | 'rejected';
  file: string;
  expired: boolean;
}

function pemFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /\.(pem|der|crt|cer)$/i.test(f)).map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

function entry(file: string, status: PkiEntry['status']): PkiEntry | null {
  try {
    const { der: _der, ...info } = certificateInfo(readFileSync(file));
    return { ...info, status, file, expired: validityProblem({ ...info, der: _der }) !== null };
  } catch {
    return null; // not a certificate: node-opcua ignores it too
  }
}

/**
 * The certificates of a PKI folder: the station's own (application) certificate,
 * trusted/certs and rejected/. A certificate in both trusted/ and rejected/ is
 * rejected (node-opcua's rule).
 */
export function storeEntries(folder: string): PkiEntry[] {
  const out: PkiEntry[] = [];
  for (const f of pemFiles(join(folder, 'own', 'certs'))) { const e = entry(f, 'own'); if (e) out.push(e); }
  for (const f of pemFiles(join(folder, 'trusted', 'certs'))) { const e = entry(f, 'trusted'); if (e) out.push(e); }
  for (const f of pemFiles(join(folder, 'rejected'))) { const e = entry(f, 'rejected'); if (e) out.push(e); }
  const rejected = new Set(out.filter((e) => e.status === 'rejected').map((e) => e.thumbprint));
  return out.filter((e) => e.status !== 'trusted' || !rejected.has(e.thumbprint));
}

/**
 * rejected/ holds both the certificates an operator rejected and the unknown ones a refused
 * attempt stored there (node-opcua's convention). `pki reject` notes its thumbprints here so that
 * the link can tell "rejected" from "not trusted yet".
 */
const EXPLICIT_REJECTIONS = 'rejected-by-operator.json';

export function explicitlyRejected(folder: string): Set<string> {
  try {
    const list = JSON.parse(readFileSync(join(folder, EXPLICIT_REJECTIONS), 'utf8')) as unknown;
    return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : []);
  } catch {
    return new Set();
  }
}

function noteRejection(folder: string, thumbprint: string, rejected: boolean): void {
  const set = explicitlyRejected(folder);
  if (rejected === set.has(thumbprint)) return;
  if (rejected) set.add(thumbprint); else set.delete(thumbprint);
  const file = join(folder, EXPLICIT_REJECTIONS);
  writeFileSync(`${file}.tmp`, `${JSON.stringify([...set].sort(), null, 1)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function withStore<T>(folder: string, fn: (cm: OPCUACertificateManager) => Promise<T>): Promise<T> {
  const cm = new OPCUACertificateManager({ rootFolder: folder, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true });
  await cm.initialize();
  try { return await fn(cm); } finally { await cm.dispose().catch(() => undefined); }
}

/** A trusted or rejected certificate by thumbprint (or a unique prefix of at least 8 hex digits). */
function findByThumbprint(folder: string, thumbprint: string): PkiEntry {
  const t = thumbprint.toLowerCase().replace(/:/g, '');
  if (!/^[0-9a-f]{8,40}$/.test(t)) throw new PkiCertificateUnknownError(`"${thumbprint}" (a SHA-1 thumbprint, at least 8 hex digits, or a certificate file)`);
  const matches = storeEntries(folder).filter((e) => e.status !== 'own' && e.thumbprint.startsWith(t));
  const unique = new Map(matches.map((m) => [m.thumbprint, m]));
  if (unique.size === 0) throw new PkiCertificateUnknownError(`${thumbprint} in ${folder} (trusted/ or rejected/)`);
  if (unique.size > 1) throw new PkiCertificateUnknownError(`${thumbprint} uniquely in ${folder} (${unique.size} certificates share the prefix)`);
  return [...unique.values()][0]!;
}

/**
 * Trust a certificate: a thumbprint found in rejected/ (where the first refused
 * attempt stored the PLC's certificate) or a certificate file (PEM or DER) from
 * the PLC's vendor tool. A running link uses it from its next attempt.
 */
export async function trustCertificate(folder: string, thumbprintOrFile: string): Promise<PkiEntry> {
  const info = existsSync(thumbprintOrFile) && statSync(thumbprintOrFile).isFile()
    ? certificateInfo(readFileSync(thumbprintOrFile))
    : certificateInfo(readFileSync(findByThumbprint(folder, thumbprintOrFile).file));
  await withStore(folder, (cm) => cm.trustCertificate(info.der));
  noteRejection(folder, info.thumbprint, false);
  const e = storeEntries(folder).find((x) => x.thumbprint === info.thumbprint && x.status === 'trusted');
  if (!e) throw new Error(`certificate ${info.thumbprint} is not in ${folder}/trusted after trusting it`);
  return e;
}

/** Reject a trusted (or unknown-but-stored) certificate by thumbprint: the link refuses it from its next attempt. */
export async function rejectCertificate(folder: string, thumbprint: string): Promise<PkiEntry> {
  const found = findByThumbprint(folder, thumbprint);
  const info = certificateInfo(readFileSync(found.file));
  await withStore(folder, (cm) => cm.rejectCertificate(info.der));
  noteRejection(folder, info.thumbprint, true);
  const e = storeEntries(folder).find((x) => x.thumbprint === info.thumbprint && x.status === 'rejected');
  if (!e) throw new Error(`certificate ${info.thumbprint} is not in ${folder}/rejected after rejecting it`);
  return e;
}
