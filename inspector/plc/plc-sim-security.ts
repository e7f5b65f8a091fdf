/**
 * The OPC UA security the simulated PLC offers (plc-simulator.ts), kept apart
 * from the PLC logic because it is only the server's configuration and its
 * audit of who wrote: nothing here touches parts, gates or the line.
 *
 * Security: the endpoints a PLC offers, None + Sign + SignAndEncrypt with
 * Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss by default
 * (`security.modes` / `security.policies` narrow them), anonymous access unless
 * `allowAnonymous: false`, optional user names and passwords. The server's PKI
 * is `<certificateFolder>/server` (its certificate: `certificateFile`); client
 * certificates are accepted automatically unless `autoAcceptClientCertificates`
 * is false (then `inspector pki trust --folder <certificateFolder>/server`).
 * `lastWrite` says over which security and as which user the last result came.
 */
import { join } from 'node:path';
import {
  MessageSecurityMode, OPCUACertificateManager, SecurityPolicy, type ISessionContext, type OPCUAServerOptions,
} from 'node-opcua';

export type PlcSimSecurityMode = 'None' | 'Sign' | 'SignAndEncrypt';
export type PlcSimSecurityPolicy = 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export interface PlcSimSecurityOptions {
  /** default ['None', 'Sign', 'SignAndEncrypt'] */
  modes?: readonly PlcSimSecurityMode[];
  /** the policies of the Sign / SignAndEncrypt endpoints (default all three) */
  policies?: readonly PlcSimSecurityPolicy[];
  /** default true */
  allowAnonymous?: boolean;
  /** user name + password accounts (default none) */
  users?: readonly { userName: string; password: string }[];
  /** accept any client certificate (default true, a test PLC); false: only those in <certificateFolder>/server/trusted */
  autoAcceptClientCertificates?: boolean;
}

/** What the simulator saw of the last result request: the channel's security and the session's user. */
export interface PlcSimWriteSecurity { mode: string; policy: string; user: string }

/** `PlcSimSecurityOptions` with every default filled in. */
export type PlcSimSecurity = Required<Omit<PlcSimSecurityOptions, 'users'>> & { users: readonly { userName: string; password: string }[] };

/** Fill in the defaults (every mode and policy, anonymous allowed, no users) and refuse an offer no client could use. */
export function resolveSimSecurity(sec: PlcSimSecurityOptions): PlcSimSecurity {
  const security: PlcSimSecurity = {
    modes: sec.modes ?? ['None', 'Sign', 'SignAndEncrypt'],
    policies: sec.policies ?? ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'],
    allowAnonymous: sec.allowAnonymous ?? true,
    users: sec.users ?? [],
    autoAcceptClientCertificates: sec.autoAcceptClientCertificates ?? true,
  };
  if (security.modes.length === 0) throw new Error('PlcSimulator: security.modes is empty');
  if (security.modes.some((m) => m !== 'None') && security.policies.length === 0) {
    throw new Error('PlcSimulator: Sign / SignAndEncrypt need at least one policy');
  }
  return security;
}

/**
 * The security part of the server's options: its PKI folders, the endpoints
 * (modes × policies) and who may open a session. Built afresh for every server
 * start (a node-opcua server cannot be restarted after shutdown).
 */
export function serverSecurityOptions(sec: PlcSimSecurity, serverPkiFolder: string, certFolder: string): OPCUAServerOptions {
  const users = sec.users;
  const offersNone = sec.modes.includes('None');
  return {
    serverCertificateManager: new OPCUACertificateManager({
      rootFolder: serverPkiFolder, automaticallyAcceptUnknownCertificate: sec.autoAcceptClientCertificates }),
    userCertificateManager: new OPCUACertificateManager({
      rootFolder: join(certFolder, 'user'), automaticallyAcceptUnknownCertificate: sec.autoAcceptClientCertificates }),
    securityModes: sec.modes.map((m) => MessageSecurityMode[m]),
    securityPolicies: [...(offersNone ? [SecurityPolicy.None] : []), ...sec.policies.map((p) => SecurityPolicy[p])],
    allowAnonymous: sec.allowAnonymous,
    ...(users.length ? { userManager: { isValidUser: (u: string, p: string) => users.some((x) => x.userName === u && x.password === p) } } : {}),
    // without a None endpoint, a restricted None endpoint still answers GetEndpoints (clients read the policies there)
    disableDiscovery: offersNone,
  };
}

/** The channel's security and the session's user of a request (what the PLC would audit). */
export function writeSecurity(context: ISessionContext): PlcSimWriteSecurity {
  const session = (context as { session?: { channel?: { securityMode?: MessageSecurityMode; securityPolicy?: string } | null;
    userIdentityToken?: { userName?: unknown; certificateData?: unknown } | null } }).session;
  const channel = session?.channel;
  const policy = channel?.securityPolicy ?? '';
  const token = session?.userIdentityToken;
  const user = token && typeof token.userName === 'string' ? token.userName : token && token.certificateData ? 'x509' : 'anonymous';
  return { mode: channel?.securityMode !== undefined ? (MessageSecurityMode[channel.securityMode] ?? '?') : '?',
    policy: policy.slice(policy.lastIndexOf('#') + 1) || '?', user };
}
