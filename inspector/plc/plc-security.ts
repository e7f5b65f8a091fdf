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
 * - Trust (plc-security-refusals.ts, the folder in plc-pki.ts): the PLC's
 *   certificate must be in the station's trusted/ folder. An unknown one is
 *   stored in rejected/ by the first refused attempt and stays refused until an
 *   operator trusts it (`inspector pki trust <thumbprint>`); nothing is ever
 *   accepted automatically. Each attempt re-reads the folders, so a certificate
 *   trusted while the station runs is used by the next retry.
 * - Every refusal is a PlcSecurityError (INSPECTOR_PLC_SECURITY) whose `reason`
 *   says which (see PlcSecurityReason) and whose message says what to do.
 * - User identity (plc-user-identity.ts): anonymous, user name + password
 *   (inline or from a file) or an X.509 certificate + private key. Passwords and
 *   keys are never logged: describeUser() is what logs see.
 *
 * This file holds the configuration and the endpoint choice; the rest is in the
 * files named above and re-exported here, so every importer keeps this one path.
 */
import {
  MessageSecurityMode, SecurityPolicy, UserTokenType,
  type EndpointDescription,
} from 'node-opcua';
import { ConfigInvalidError } from '../core/errors.js';
import { plcSecurityError } from './plc-security-refusals.js';
import type { PlcUserConfig } from './plc-user-identity.js';

export {
  PkiCertificateUnknownError, certificateInfo, rejectCertificate, storeEntries, trustCertificate,
  type CertificateInfo, type PkiEntry,
} from './plc-pki.js';
export {
  checkServerCertificate, classifyConnectError, isPlcSecurityError, plcSecurityError,
  type PlcSecurityErrorInstance, type PlcSecurityReason,
} from './plc-security-refusals.js';
export { describeUser, loadUserIdentity, redactPlcSecrets, validateUser, type PlcUserConfig } from './plc-user-identity.js';

export type PlcSecurityMode = 'auto' | 'None' | 'Sign' | 'SignAndEncrypt';
export type PlcSecurityPolicyName = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
export type PlcSecurityPolicy = 'auto' | PlcSecurityPolicyName;

export interface PlcSecurityConfig {
  /** default 'auto': the most secure mode the PLC offers (never None) */
  mode?: PlcSecurityMode;
  /** default 'auto': the most secure policy the PLC offers for that mode */
  policy?: PlcSecurityPolicy;
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
