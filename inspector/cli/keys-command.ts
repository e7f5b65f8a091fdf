/**
 * `inspector keys …`: ed25519 key pairs for signing model packages
 * (registry/signing.ts).
 *
 *   inspector keys create --out DIR [--name key]   writes DIR/key.pem (private, mode 0600) and DIR/key.pub.pem; prints the key id
 *   inspector keys id FILE                         the key id of a public or private key PEM
 *
 * The private key stays with whoever signs (`inspector models sign DIR --key
 * DIR/key.pem`); the station gets the public key (`registry.trustedKeys`).
 * Existing key files are never overwritten.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { SigningKeyInvalidError } from '../core/errors.js';
import { generateSigningKey, keyIdOf, parsePublicKey, readPrivateKey } from '../registry/signing.js';

const print = (v: unknown): void => { process.stdout.write(`${JSON.stringify(v, null, 2)}\n`); };

/** Write a new key pair into `dir`; refuses to overwrite. Returns the paths and the key id. */
export async function createKeyPair(dir: string, name = 'key'): Promise<{ keyId: string; privateKey: string; publicKey: string }> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) throw Object.assign(new Error(`--name ${name}: a plain file name`), { code: 'INSPECTOR_USAGE' });
  const out = resolve(dir);
  await mkdir(out, { recursive: true, mode: 0o700 });
  const { privatePem, publicPem, keyId } = generateSigningKey();
  const privateKey = join(out, `${name}.pem`);
  const publicKey = join(out, `${name}.pub.pem`);
  for (const p of [privateKey, publicKey]) if (existsSync(p)) throw new SigningKeyInvalidError(p, 'exists (keys are never overwritten)');
  const write = async (path: string, text: string, mode: number): Promise<void> => {
    try {
      await writeFile(path, text, { flag: 'wx', mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SigningKeyInvalidError(path, 'exists (keys are never overwritten)');
      throw err;
    }
    await chmod(path, mode); // whatever the umask
  };
  await write(privateKey, privatePem, 0o600);
  await write(publicKey, publicPem, 0o644);
  return { keyId, privateKey, publicKey };
}

/** The key id of a PEM file (public or private key). */
export function keyIdOfFile(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (/PRIVATE KEY/.test(text)) return keyIdOf(readPrivateKey(path));
  return keyIdOf(parsePublicKey(text, path));
}

export function keysCommand(): Command {
  const keys = new Command('keys').description('ed25519 key pairs that sign model packages');
  keys.command('create').requiredOption('--out <dir>', 'folder for the key files (created, mode 0700)')
    .option('--name <name>', 'file name stem: NAME.pem (private) and NAME.pub.pem (public)', 'key')
    .description('create a signing key pair; give the station the .pub.pem (registry.trustedKeys), keep the .pem private')
    .action(async (o: { out: string; name: string }) => print(await createKeyPair(o.out, o.name)));
  keys.command('id').argument('<file>', 'a public or private key (PEM)').description('print the key id (as in signature.json)')
    .action((file: string) => print({ keyId: keyIdOfFile(file) }));
  return keys;
}
