/**
 * OPC UA security of the PLC link: which endpoint to use, whether the PLC's
 * certificate is trusted, the user identity, and the station's PKI folder
 * (`inspector pki list | trust | reject`, cli/pki-command.ts).
 *
 * - Endpoint: the PLC's endpoints are read over a None channel (GetEndpoints is
 *   allowed there even on a PLC that offers no None session endpoint), then one
 *   is chosen from `security: { mode, policy }`. 'auto' picks the most secure one
 *   offered: SignAndEncrypt before Sign, then Aes256_Sha256_RsaPss before
 *   Basic256Sha256 before Aes128_Sha256_RsaOaep. None is used only when the
 *   config says `mode: 'None'`; 'auto' never falls back to it.
 * - Trust: the PLC's certificate must be in the station's trusted/ folder. An
 *   unknown one is stored in rejected/ by the first refused attempt and stays
 *   refused until an operator trusts it (`inspector pki trust <thumbprint>`);
 *   nothing is ever accepted automatically. Each attempt re-reads the folders,
 *   so a certificate trusted while the station runs is used by the next retry.
 * - Every refusal is a PlcSecurityError (INSPECTOR_PLC_SECURITY) whose `reason`
 *   says which (see PlcSecurityReason) and whose message says what to do.
 * - User identity: anonymous, user name + password (inline or from a file) or an
 *   X.509 certificate + private key. Passwords and keys are never logged:
 *   describeUser() is what logs see.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import createError from '@fastify/error';
import {
  MessageSecurityMode, OPCUACertificateManager, SecurityPolicy, UserTokenType,
  type EndpointDescription, type UserIdentityInfo,
} from 'node-opcua';
import { ConfigInvalidError, PlcSecurityError } from '../core/errors.js';

export type PlcSecurityMode = 'auto' | 'None' | 'Sign' | 'SignAndEncrypt';
export type PlcSecurityPolicyName = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
export type PlcSecurityPolicy = 'auto' | PlcSecurityPolicyName;

export interface PlcSecurityConfig {
  /** default 'auto': the most secure mode the PLC offers (never None) */
  mode?: PlcSecurityMode;
  /** default 'auto': the most secure policy the PLC offers for that mode */
  policy?: PlcSecurityPolicy;
}

/** How the station identifies itself to the PLC (the `plc.user` config). */
export type PlcUserConfig =
  | 'anonymous'
  | { userName: string; password?: string; passwordFile?: string }
  | { certificateFile: string; privateKeyFile: string };

/** Why the link's security refused a connection (PlcSecurityError.reason). */
export type PlcSecurityReason =
  /** the PLC's certificate is not in trusted/ (first seen: now stored in rejected/) */
  | 'untrusted'
  /** the PLC's certificate was rejected by an operator (`inspector pki reject`) */
  | 'rejected'
  /** the PLC's certificate is outside its validity period */
  | 'expired'
  /** revoked or unusable (bad signature, wrong use, unparsable) */
  | 'invalid'
  /** the PLC does not offer the configured mode / policy (or only None, with mode 'auto') */
  | 'policy-not-offered'
  /** the PLC refused the station's certificate (trust it on the PLC) */
  | 'station-certificate-refused'
  /** the PLC does not accept this kind of user token on the chosen endpoint */
  | 'user-token-not-offered'
  /** the PLC refused the user (wrong password, unknown user, untrusted user certificate) */
  | 'user-refused';

export type PlcSecurityErrorInstance = Error & { code: string; reason: PlcSecurityReason; thumbprint?: string };

export function plcSecurityError(reason: PlcSecurityReason, message: string, thumbprint?: string): PlcSecurityErrorInstance {
  const err = new PlcSecurityError(message) as PlcSecurityErrorInstance;
  err.reason = reason;
  if (thumbprint) err.thumbprint = thumbprint;
  return err;
}

export function isPlcSecurityError(err: unknown): err is PlcSecurityErrorInstance {
  return err instanceof Error && (err as { code?: unknown }).code === 'INSPECTOR_PLC_SECURITY';
}

export const PLC_SECURITY_POLICIES: readonly PlcSecurityPolicyName[] = ['Aes256_Sha256_RsaPss', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep'];
/** more is more secure */
const POLICY_RANK: Record<PlcSecurityPolicyName, number> = { Aes256_Sha256_RsaPss: 3, Basic256Sha256: 2, Aes128_Sha256_RsaOaep: 1 };
const MODE_RANK: Partial<Record<MessageSecurityMode, number>> = {
  [MessageSecurityMode.SignAndEncrypt]: 2, [MessageSecurityMode.Sign]: 1,
};
const POLICY_BY_URI = new Map<string, PlcSecurityPolicyName>(
  PLC_SECURITY_POLICIES.map((p) => [SecurityPolicy[p] as string, p]));

/** The security of one connection, as logs, health and tests see it. */
export interface PlcLinkSecurity {
  mode: 'None' | 'Sign' | 'SignAndEncrypt';
  /** 'None' with mode None */
  policy: PlcSecurityPolicyName | 'None';
}

/** The endpoint chosen for a connection attempt: what the OPC UA client needs. */
export interface ChosenEndpoint {
  security: PlcLinkSecurity;
  securityMode: MessageSecurityMode;
  securityPolicy: SecurityPolicy;
  /** DER; null only for mode None without discovery */
  serverCertificate: Buffer | null;
}

export const NONE_ENDPOINT: ChosenEndpoint = {
  security: { mode: 'None', policy: 'None' }, securityMode: MessageSecurityMode.None,
  securityPolicy: SecurityPolicy.None, serverCertificate: null,
};

function modeName(m: MessageSecurityMode): string { return MessageSecurityMode[m] ?? String(m); }
function policyName(uri: string | null): string { return uri ? uri.slice(uri.lastIndexOf('#') + 1) : 'none'; }

/** "SignAndEncrypt/Aes256_Sha256_RsaPss, Sign/Basic256Sha256, None/None" */
export function describeEndpoints(endpoints: readonly EndpointDescription[]): string {
  const seen = new Set<string>();
  for (const e of endpoints) seen.add(`${modeName(e.securityMode)}/${policyName(e.securityPolicyUri)}`);
  return [...seen].join(', ') || 'none';
}

function tokenTypeOf(user: PlcUserConfig): UserTokenType {
  if (user === 'anonymous') return UserTokenType.Anonymous;
  return 'userName' in user ? UserTokenType.UserName : UserTokenType.Certificate;
}

/**
 * Choose the endpoint for `security` among the PLC's endpoints. Throws
 * PlcSecurityError 'policy-not-offered' (what was asked, what is offered) or
 * 'user-token-not-offered'.
 */
export function selectEndpoint(endpoints: readonly EndpointDescription[], security: Required<PlcSecurityConfig>,
  user: PlcUserConfig = 'anonymous'): ChosenEndpoint {
  const offered = describeEndpoints(endpoints);
  const { mode, policy } = security;
  let candidates: { e: EndpointDescription; p: PlcSecurityPolicyName | 'None'; rank: number }[] = [];
  for (const e of endpoints) {
    if (mode === 'None') {
      if (e.securityMode === MessageSecurityMode.None && e.securityPolicyUri === SecurityPolicy.None) candidates.push({ e, p: 'None', rank: 0 });
      continue;
    }
    const p = POLICY_BY_URI.get(e.securityPolicyUri ?? '');
    const modeRank = MODE_RANK[e.securityMode];
    if (!p || modeRank === undefined) continue; // None, Invalid, or a policy this station does not use (Basic256, Basic128Rsa15)
    if (mode !== 'auto' && modeName(e.securityMode) !== mode) continue;
    if (policy !== 'auto' && p !== policy) continue;
    candidates.push({ e, p, rank: modeRank * 10 + POLICY_RANK[p] });
  }
  if (candidates.length === 0) {
    const wanted = mode === 'None' ? 'None' : `${mode}/${policy}`;
    const onlyNone = endpoints.length > 0 && endpoints.every((e) => e.securityMode === MessageSecurityMode.None);
    const hint = mode === 'auto' && onlyNone
      ? ': the PLC offers no secure endpoint. Secure the PLC, or set plc.security.mode "None" to accept an unsigned, unencrypted link'
      : '';
    throw plcSecurityError('policy-not-offered', `the PLC does not offer security ${wanted} (offered: ${offered})${hint}`);
  }
  // a user token the endpoint does not accept is the next refusal: skip such endpoints first
  const tokenType = tokenTypeOf(user);
  const accepting = candidates.filter((c) => (c.e.userIdentityTokens ?? []).some((t) => t.tokenType === tokenType));
  if (accepting.length === 0) {
    throw plcSecurityError('user-token-not-offered',
      `the PLC does not accept ${UserTokenType[tokenType]} users on ${mode === 'None' ? 'None' : `${mode}/${policy}`} (set plc.user)`);
  }
  candidates = accepting.sort((a, b) => b.rank - a.rank);
  const best = candidates[0]!.e;
  const p = candidates[0]!.p;
  return {
    security: { mode: modeName(best.securityMode) as PlcLinkSecurity['mode'], policy: p },
    securityMode: best.securityMode,
    securityPolicy: (best.securityPolicyUri ?? SecurityPolicy.None) as SecurityPolicy,
    serverCertificate: best.serverCertificate && best.serverCertificate.length ? Buffer.from(best.serverCertificate) : null,
  };
}

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

function validityProblem(info: CertificateInfo, now = new Date()): string | null {
  if (now > info.notAfter) return `expired on ${info.notAfter.toISOString()}`;
  if (now < info.notBefore) return `not valid before ${info.notBefore.toISOString()}`;
  return null;
}

/**
 * The PLC's certificate must be trusted in the station's PKI folder. node-opcua
 * stores an unknown one in rejected/ (automaticallyAcceptUnknownCertificate is
 * false). Throws PlcSecurityError: 'expired', 'rejected', 'untrusted' or 'invalid'.
 */
export async function checkServerCertificate(certManager: OPCUACertificateManager, der: Buffer | null): Promise<CertificateInfo> {
  if (!der) throw plcSecurityError('invalid', 'the PLC sent no certificate with its secure endpoint');
  let info: CertificateInfo;
  try { info = certificateInfo(der); } catch (err) {
    throw plcSecurityError('invalid', `the PLC's certificate cannot be read: ${(err as Error).message}`);
  }
  const t = info.thumbprint;
  const wasRejected = explicitlyRejected(certManager.rootDir).has(t)
    && storeEntries(certManager.rootDir).some((e) => e.status === 'rejected' && e.thumbprint === t);
  const status = await certManager.checkCertificate(der);
  if (status.isGood()) return info;
  const validity = validityProblem(info);
  const name = status.name;
  if (validity || /TimeInvalid/.test(name)) {
    throw plcSecurityError('expired', `the PLC's certificate ${t} (${info.subject}) is ${validity ?? 'outside its validity period'} (${name})`, t);
  }
  if (name === 'BadCertificateUntrusted') {
    if (wasRejected) {
      throw plcSecurityError('rejected', `the PLC's certificate ${t} (${info.subject}) is rejected in ${certManager.rootDir}`
        + ` (trust it with \`inspector pki trust ${t}\` if it is the right PLC)`, t);
    }
    throw plcSecurityError('untrusted', `the PLC's certificate ${t} (${info.subject}) is not trusted (kept in`
      + ` ${certManager.rejectedFolder}): check it is the PLC's, then \`inspector pki trust ${t}\``, t);
  }
  throw plcSecurityError('invalid', `the PLC's certificate ${t} (${info.subject}) is refused: ${name}`, t);
}

/**
 * Turn a connect / create-session failure into a PlcSecurityError where it is one
 * (the PLC refused the station's certificate or the user); other errors unchanged.
 */
export function classifyConnectError(err: unknown, stationThumbprint: string | null, user: PlcUserConfig): unknown {
  if (!(err instanceof Error) || isPlcSecurityError(err)) return err;
  const m = err.message;
  if (/BadUserAccessDenied|BadIdentityToken(Invalid|Rejected)|BadUserSignatureInvalid|BadIdentityChangeNotSupported/.test(m)) {
    const code = /Bad\w+/.exec(m)?.[0] ?? 'refused';
    return plcSecurityError('user-refused', `the PLC refused the user ${describeUser(user)} (${code})`);
  }
  if (/Cannot find (ANONYMOUS|USERNAME|CERTIFICATE|\w+) user token policy/i.test(m)) {
    return plcSecurityError('user-token-not-offered', `the PLC does not accept the user ${describeUser(user)}: ${m.split('\n')[0]}`);
  }
  if (/BadSecurityChecksFailed|BadCertificate(Untrusted|Invalid|UriInvalid|UseNotAllowed|Revoked|TimeInvalid)/.test(m)) {
    const code = /Bad\w+/.exec(m)?.[0] ?? 'refused';
    return plcSecurityError('station-certificate-refused', `the PLC refused the station's certificate${stationThumbprint ? ` ${stationThumbprint}` : ''}`
      + ` (${code}): trust it on the PLC (\`inspector pki list\` shows it as "own")`, stationThumbprint ?? undefined);
  }
  if (/BadSecurityPolicyRejected|BadSecurityModeRejected/.test(m)) {
    return plcSecurityError('policy-not-offered', `the PLC rejected the security policy (${/Bad\w+/.exec(m)?.[0]})`);
  }
  return err;
}

// ------------------------------------------------------------ user identity

/** What logs may say about the user: never a password or key. */
export function describeUser(user: PlcUserConfig): string {
  if (user === 'anonymous') return 'anonymous';
  if ('userName' in user) return `user name "${user.userName}"`;
  return `X.509 ${user.certificateFile}`;
}

/** A config as it may be stored or shown (the run's config in the results database): the PLC user's inline password replaced. */
export function redactPlcSecrets<T extends { plc: { user: PlcUserConfig } }>(config: T): T {
  const user = config.plc.user;
  if (user === 'anonymous' || !('userName' in user) || user.password === undefined) return config;
  return { ...config, plc: { ...config.plc, user: { ...user, password: '<redacted>' } } };
}

/** Check the shape of `plc.user` (one of password / passwordFile). Throws ConfigInvalidError. */
export function validateUser(user: PlcUserConfig): void {
  if (user === 'anonymous') return;
  if ('userName' in user) {
    if (!user.userName) throw new ConfigInvalidError('plc.user.userName is empty');
    const n = (user.password !== undefined ? 1 : 0) + (user.passwordFile !== undefined ? 1 : 0);
    if (n !== 1) throw new ConfigInvalidError('plc.user: give exactly one of password and passwordFile');
    return;
  }
  if (!('certificateFile' in user) || !user.certificateFile || !user.privateKeyFile) {
    throw new ConfigInvalidError('plc.user: "anonymous", { userName, password | passwordFile } or { certificateFile, privateKeyFile }');
  }
}

/**
 * The node-opcua identity for `user`, files read now. A missing or unreadable
 * file is a ConfigInvalidError that names the file, never its content.
 */
export function loadUserIdentity(user: PlcUserConfig): UserIdentityInfo {
  validateUser(user);
  const read = (file: string, what: string): Buffer => {
    try { return readFileSync(file); } catch (err) {
      throw new ConfigInvalidError(`plc.user.${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  };
  if (user === 'anonymous') return { type: UserTokenType.Anonymous };
  if ('userName' in user) {
    const password = user.password ?? read(user.passwordFile!, 'passwordFile').toString('utf8').replace(/\r?\n$/, '');
    return { type: UserTokenType.UserName, userName: user.userName, password };
  }
  let certificateData: Buffer;
  try { certificateData = certificateInfo(read(user.certificateFile, 'certificateFile')).der; } catch (err) {
    if ((err as { code?: string }).code === 'INSPECTOR_CONFIG_INVALID') throw err;
    throw new ConfigInvalidError(`plc.user.certificateFile ${user.certificateFile}: not a certificate`);
  }
  const privateKey = read(user.privateKeyFile, 'privateKeyFile').toString('utf8');
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(privateKey)) {
    throw new ConfigInvalidError(`plc.user.privateKeyFile ${user.privateKeyFile}: not a PEM private key`);
  }
  return { type: UserTokenType.Certificate, certificateData, privateKey };
}

/** `security` with its defaults, checked. */
export function resolveSecurity(s: PlcSecurityConfig | undefined): Required<PlcSecurityConfig> {
  const mode = s?.mode ?? 'auto';
  const policy = s?.policy ?? 'auto';
  if (!['auto', 'None', 'Sign', 'SignAndEncrypt'].includes(mode)) throw new ConfigInvalidError(`plc.security.mode "${mode}"`);
  if (policy !== 'auto' && !PLC_SECURITY_POLICIES.includes(policy)) throw new ConfigInvalidError(`plc.security.policy "${policy}"`);
  if (mode === 'None' && policy !== 'auto') {
    throw new ConfigInvalidError(`plc.security: mode None has no policy (got "${policy}")`);
  }
  return { mode, policy };
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

function explicitlyRejected(folder: string): Set<string> {
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
