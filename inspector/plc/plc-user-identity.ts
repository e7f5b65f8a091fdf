/**
 * Who the station is towards the PLC: the `plc.user` config (anonymous, user name +
 * password inline or from a file, X.509 certificate + private key), its checks, and the
 * node-opcua identity loaded from it.
 *
 * Separate from plc-security.ts because it holds the link's only secrets: everything that
 * touches a password or key is here, so it is easy to see that logs get describeUser()
 * and stored configs get redactPlcSecrets(), never the secret itself.
 */
import { readFileSync } from 'node:fs';
import { UserTokenType, type UserIdentityInfo } from 'node-opcua';
import { ConfigInvalidError } from '../core/errors.js';
import { certificateInfo } from './plc-pki.js';

/** How the station identifies itself to the PLC (the `plc.user` config). */
export type PlcUserConfig =
  | 'anonymous'
  | { userName: string; password?: string; passwordFile?: string }
  | { certificateFile: string; privateKeyFile: string };

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
