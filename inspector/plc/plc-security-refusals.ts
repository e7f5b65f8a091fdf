/**
 * Every way the link's security refuses a connection, as one coded error
 * (PlcSecurityError, INSPECTOR_PLC_SECURITY, with a `reason`): the station's check of
 * the PLC's certificate against its trusted/ folder, and the PLC's own refusals
 * (of the station's certificate, the user, the policy) read from connect errors.
 *
 * Separate from plc-security.ts (which endpoint to use) because this is what the
 * operator sees when the link does not come up: each message says what to do.
 */
import type { OPCUACertificateManager } from 'node-opcua';
import { PlcSecurityError } from '../core/errors.js';
import { certificateInfo, explicitlyRejected, storeEntries, validityProblem, type CertificateInfo } from './plc-pki.js';
import { describeUser, type PlcUserConfig } from './plc-user-identity.js';

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
