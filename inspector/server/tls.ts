/**
 * The station's HTTPS certificate (config `server.tls`), resolved on the main thread before the
 * server worker starts; the worker gets the PEM text and hands it to Fastify's `https` option.
 *
 * - 'self-signed' (default): a certificate made at the first start and kept in `server.tls.dir`
 *   (default `<plc.certificateFolder>/https`, beside the station's OPC UA PKI): `cert.pem`, and
 *   `key.pem` (mode 0600). Kept across restarts so its SHA-256 fingerprint stays what users pinned
 *   (`inspector models … --fingerprint`). It is made again only when it no longer fits: expired,
 *   key and certificate not a pair, or its names no longer cover the configured host (the log says
 *   which, and the new fingerprint).
 * - 'files': a certificate (chain) and key issued by the plant's CA, read as they are.
 * - 'off': plain HTTP, only when the config says so; /health says so (describeServerTls).
 *
 * The certificate is made with @peculiar/x509 (already installed with node-opcua, which makes its
 * OPC UA certificates with it) over node's WebCrypto: ECDSA P-256, serverAuth, SANs for localhost,
 * 127.0.0.1, ::1 and the configured host (for a wildcard host: this machine's name and addresses).
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import createError from '@fastify/error';
import { ConfigInvalidError } from '../core/errors.js';

export type ServerTlsMode = 'self-signed' | 'files' | 'off';

export interface ServerTlsConfig {
  mode: ServerTlsMode;
  /** 'files': the certificate (PEM, leaf first, then intermediates) */
  cert?: string;
  /** 'files': its private key (PEM) */
  key?: string;
  /** 'self-signed': where it is kept (default `<plc.certificateFolder>/https`) */
  dir?: string;
}

/** What the server worker needs (cert, key) and what the station tells users (fingerprint, file). */
export interface ServerTls {
  cert: string;
  key: string;
  source: 'self-signed' | 'files';
  /** SHA-256 of the leaf certificate, colon-separated upper-case hex (as openssl and node print it) */
  fingerprint256: string;
  certFile: string;
  /** the certificate's names ("DNS:localhost, IP Address:127.0.0.1, …") */
  subjectAltName: string;
  validTo: string;
  /** true when this start made a new self-signed certificate (with why) */
  created: string | null;
}

export const TlsInvalidError = createError<[string]>('INSPECTOR_TLS_INVALID', 'HTTPS certificate: %s', 500);

const CERT_FILE = 'cert.pem';
const KEY_FILE = 'key.pem';
const VALID_DAYS = 5 * 365;
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export function tlsDirFor(cfg: Pick<ServerTlsConfig, 'dir'>, pkiFolder: string): string {
  return cfg.dir ?? join(pkiFolder, 'https');
}

/** "AB:CD:…" of a PEM or DER certificate. */
export function fingerprintOf(cert: string | Buffer): string {
  return new X509Certificate(cert).fingerprint256;
}

/**
 * A fingerprint as users paste it: "SHA256:ab:cd…", "ab cd …", "abcd…" (any case) → "AB:CD:…".
 * Anything that is not 32 bytes of hex is refused (a mistyped pin must not silently match nothing).
 */
export function normalizeFingerprint(s: string): string {
  const hex = s.trim().replace(/^sha-?256[:=/ ]?/i, '').replace(/[\s:]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw Object.assign(new Error(`"${s}" is not a SHA-256 certificate fingerprint (64 hex digits, colons allowed)`), { code: 'INSPECTOR_USAGE' });
  }
  return hex.match(/../g)!.join(':');
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** The names the certificate is made for: loopback always, the configured host, or every address of this machine for a wildcard host. */
export function certificateNames(host: string): { dns: string[]; ip: string[] } {
  const dns = new Set(['localhost']);
  const ip = new Set(['127.0.0.1', '::1']);
  const add = (h: string): void => { if (isIP(h)) ip.add(h); else if (h) dns.add(h.toLowerCase()); };
  if (isWildcard(host)) {
    add(hostname());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) add(a.address.replace(/%.*$/, ''));
  } else {
    add(host);
  }
  return { dns: [...dns], ip: [...ip] };
}

/** Why a kept certificate no longer fits (null: it fits). */
function unfit(cert: X509Certificate, keyPem: string, host: string, now: Date): string | null {
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'key.pem is not the key of cert.pem';
  if (new Date(cert.validTo) <= now) return `it expired on ${cert.validTo}`;
  if (new Date(cert.validFrom) > now) return `it is not valid before ${cert.validFrom}`;
  // only the configured host must be covered: a wildcard host's addresses may come and go (DHCP), loopback always works
  if (!isWildcard(host) && !(isIP(host) ? cert.checkIP(host) : cert.checkHost(host))) return `it does not name the configured host ${host}`;
  return null;
}

async function makeSelfSigned(host: string): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const names = certificateNames(host);
  const notBefore = new Date(Date.now() - 60_000); // a little slack for clients whose clock is behind
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '7'), // positive
    name: `CN=inline-inspector station ${isWildcard(host) ? hostname() : host}, O=inline-inspector`,
    notBefore, notAfter: new Date(notBefore.getTime() + VALID_DAYS * 86_400_000),
    signingAlgorithm: ALG, keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })), ...names.ip.map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem') + '\n', key };
}

/** temp file + rename: a crash never leaves half a key or a certificate without its key */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

function describe(certPem: string, keyPem: string, source: ServerTls['source'], certFile: string, created: string | null): ServerTls {
  const c = new X509Certificate(certPem);
  return { cert: certPem, key: keyPem, source, fingerprint256: c.fingerprint256, certFile, subjectAltName: c.subjectAltName ?? '', validTo: c.validTo, created };
}

/**
 * The certificate to serve with, or null for `mode: 'off'`. Self-signed: read from `dir`, made
 * (again) when absent or unfit. Files: read and checked (a pair, not expired); every problem is
 * a coded error naming the file, at start-up, before the server listens.
 */
export async function loadServerTls(cfg: ServerTlsConfig, o: { pkiFolder: string; host: string; now?: Date }): Promise<ServerTls | null> {
  const now = o.now ?? new Date();
  if (cfg.mode === 'off') return null;
  if (cfg.mode === 'files') {
    if (!cfg.cert || !cfg.key) throw new ConfigInvalidError('/server/tls: mode "files" needs cert and key (PEM files issued by the plant\'s CA)');
    let certPem: string; let keyPem: string;
    try {
      certPem = readFileSync(cfg.cert, 'utf8');
      keyPem = readFileSync(cfg.key, 'utf8');
    } catch (err) {
      throw new TlsInvalidError(`cannot read ${(err as { path?: string }).path ?? cfg.cert}: ${(err as Error).message}`);
    }
    let why: string | null;
    try {
      const leaf = new X509Certificate(certPem);
      why = unfit(leaf, keyPem, '', now); // the plant's certificate names what the plant decided: not checked against host
    } catch (err) {
      throw new TlsInvalidError(`${cfg.cert} / ${cfg.key}: ${(err as Error).message}`);
    }
    if (why) throw new TlsInvalidError(`${cfg.cert}: ${why}`);
    return describe(certPem, keyPem, 'files', cfg.cert, null);
  }
  const dir = tlsDirFor(cfg, o.pkiFolder);
  const certFile = join(dir, CERT_FILE);
  const keyFile = join(dir, KEY_FILE);
  let created: string | null = 'first start: no certificate yet';
  if (existsSync(certFile) && existsSync(keyFile)) {
    const certPem = readFileSync(certFile, 'utf8');
    const keyPem = readFileSync(keyFile, 'utf8');
    try {
      created = unfit(new X509Certificate(certPem), keyPem, o.host, now);
    } catch (err) {
      created = `the kept certificate cannot be read (${(err as Error).message})`;
    }
    if (created === null) return describe(certPem, keyPem, 'self-signed', certFile, null);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made = await makeSelfSigned(o.host);
  writeAtomic(keyFile, made.key, 0o600);
  writeAtomic(certFile, made.cert, 0o644);
  return describe(made.cert, made.key, 'self-signed', certFile, created);
}

/** /health's words for the server's transport (the `server` section). */
export function describeServerTls(mode: ServerTlsMode, fingerprint256?: string | null): string {
  if (mode === 'off') return 'HTTP only (configured: server.tls.mode off, unencrypted; passwords and tokens cross the network in clear)';
  const kind = mode === 'files' ? 'certificate from server.tls files' : 'self-signed certificate';
  return `HTTPS, ${kind}${fingerprint256 ? `, SHA-256 ${fingerprint256}` : ''}`;
}

/** The command a user runs to pin this station's certificate (printed at start and by the demo). */
export function pinCommand(address: string, fingerprint256: string): string {
  return `inspector models list --url ${address} --fingerprint ${fingerprint256}`;
}

