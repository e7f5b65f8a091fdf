/**
 * Signed model packages: an ed25519 signature (node's own crypto) over the
 * manifest and the sha256 of every file of the package, kept beside them as
 * `signature.json`:
 *
 *   { schemaVersion: 1, algorithm: 'ed25519', keyId, signedAt,
 *     package: { name, version }, manifestSha256, files: { 'model.onnx': sha256, … },
 *     signature: base64 }
 *
 * `signature` signs a fixed prefix plus the canonical JSON (keys sorted, no
 * spaces) of every other field. `keyId` is the first 16 hex digits of the
 * sha256 of the raw 32-byte public key. `files` names exactly model.onnx and the
 * extra files the manifest lists; manifest.json is covered by `manifestSha256`.
 *
 * Keys are PEM files: PKCS#8 private keys, SPKI public keys
 * (`inspector keys create`). A station trusts the public keys of
 * `registry.trustedKeys` (PEM text or a path to a PEM file).
 *
 * `verifyPackage` is the check every registry push, promotion, validation and
 * shadow runs before anything loads; each refusal has its own code:
 *   no signature.json (and signatures required)           → INSPECTOR_MODEL_UNSIGNED
 *   signed by a key the station does not trust            → INSPECTOR_MODEL_KEY_UNKNOWN
 *   signature.json unreadable, the signature does not verify, the manifest or
 *   a file changed after signing, a file added or missing → INSPECTOR_MODEL_SIGNATURE_INVALID
 * A package that has a signature.json is verified even where signatures are
 * not required: a signature that is there must hold.
 */
import {
  createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject,
} from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  ModelKeyUnknownError, ModelPackageMissingError, ModelSignatureInvalidError, ModelUnsignedError, SigningKeyInvalidError,
} from '../core/errors.js';
import { MANIFEST_FILE, MODEL_FILE, loadModelPackage, parseManifest, sha256Hex } from '../inference/model-package.js';
import type { Manifest } from '../inference/manifest-schema.js';

export const SIGNATURE_FILE = 'signature.json';
export const SIGNATURE_ALGORITHM = 'ed25519';
/** signed before the canonical JSON: a signature over a package can mean nothing else */
const DOMAIN = 'inline-inspector model package signature v1\n';

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const SignatureDocument = Type.Object({
  schemaVersion: Type.Literal(1),
  algorithm: Type.Literal(SIGNATURE_ALGORITHM),
  keyId: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'sha256 of the raw ed25519 public key, first 16 hex digits' }),
  signedAt: Type.String({ description: 'ISO time (informative: it is signed, but nothing expires)' }),
  package: Type.Object({ name: Type.String(), version: Type.String() }, { additionalProperties: false }),
  manifestSha256: Sha256,
  files: Type.Record(Type.String(), Sha256, { description: 'model.onnx and every extra file the manifest lists' }),
  signature: Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$', description: 'base64 ed25519 signature' }),
}, { additionalProperties: false });
export type SignatureDocument = Static<typeof SignatureDocument>;

/** Who signed a package that verified. */
export interface PackageSigner {
  keyId: string;
  signedAt: string;
}

/** The files a package consists of: model.onnx, manifest.json and the extra files its manifest lists. */
export function packageFiles(manifest: Pick<Manifest, 'files'>): string[] {
  return [MODEL_FILE, MANIFEST_FILE, ...(manifest.files ?? [])];
}

/** The files a signature hashes (manifest.json has its own field). */
function signedFiles(manifest: Pick<Manifest, 'files'>): string[] {
  return [MODEL_FILE, ...(manifest.files ?? [])];
}

// ------------------------------------------------------------------ keys

function rawPublicKey(key: KeyObject): Buffer {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new SigningKeyInvalidError('(public key)', 'no ed25519 public point');
  return Buffer.from(x, 'base64url');
}

/** sha256 of the raw 32-byte public key, hex, first 16 digits (of a public or a private key). */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(rawPublicKey(pub)).digest('hex').slice(0, 16);
}

function requireEd25519(key: KeyObject, label: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new SigningKeyInvalidError(label, `a ${key.asymmetricKeyType ?? key.type} key, not ed25519`);
  return key;
}

/** A new ed25519 key pair as PEM (PKCS#8 private, SPKI public) and its key id. */
export function generateSigningKey(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** An ed25519 private key from a PEM file. */
export function readPrivateKey(path: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SigningKeyInvalidError(path, (err as Error).message);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (err) {
    throw new SigningKeyInvalidError(path, `not a PEM private key (${(err as Error).message})`);
  }
  return requireEd25519(key, path);
}

/** An ed25519 public key from PEM text (`label` names it in errors); a private key is refused. */
export function parsePublicKey(text: string, label: string): KeyObject {
  if (/PRIVATE KEY/.test(text)) throw new SigningKeyInvalidError(label, 'a private key: give the station the public key (key.pub.pem) only');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (err) {
    throw new SigningKeyInvalidError(label, `not a PEM public key (${(err as Error).message})`);
  }
  return requireEd25519(key, label);
}

/** The public keys a station trusts, by key id. */
export class TrustedKeys {
  private readonly byId = new Map<string, KeyObject>();

  constructor(keys: readonly KeyObject[] = []) {
    for (const k of keys) this.byId.set(keyIdOf(k), k);
  }

  /** Config entries: PEM text (starts with -----BEGIN) or the path of a PEM file. */
  static fromEntries(entries: readonly string[]): TrustedKeys {
    return new TrustedKeys(entries.map((e, i) => {
      if (e.trimStart().startsWith('-----BEGIN')) return parsePublicKey(e, `registry.trustedKeys[${i}]`);
      let text: string;
      try {
        text = readFileSync(resolve(e), 'utf8');
      } catch (err) {
        throw new SigningKeyInvalidError(e, (err as Error).message);
      }
      return parsePublicKey(text, e);
    }));
  }

  get ids(): string[] { return [...this.byId.keys()]; }
  get(keyId: string): KeyObject | undefined { return this.byId.get(keyId); }
}

/** What a station asks of a package's signature. */
export interface SignaturePolicy {
  trusted: TrustedKeys;
  /** refuse packages without signature.json (INSPECTOR_MODEL_UNSIGNED) */
  require: boolean;
}

/** No trusted keys, signatures not required (a package that is signed is still verified, and refused: no key is trusted). */
export const OPEN_POLICY: SignaturePolicy = { trusted: new TrustedKeys(), require: false };

/** The policy of a station config's `registry` section (key files are read now). */
export function signaturePolicy(registry: { trustedKeys?: readonly string[]; requireSignatures?: boolean }): SignaturePolicy {
  return { trusted: TrustedKeys.fromEntries(registry.trustedKeys ?? []), require: registry.requireSignatures ?? false };
}

// ------------------------------------------------------------------ signing

/** JSON with object keys sorted at every level, no spaces. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function signedBytes(doc: Omit<SignatureDocument, 'signature'>): Buffer {
  const { schemaVersion, algorithm, keyId, signedAt, package: pkg, manifestSha256, files } = doc;
  return Buffer.from(DOMAIN + canonicalJson({ schemaVersion, algorithm, keyId, signedAt, package: pkg, manifestSha256, files }), 'utf8');
}

/** sha256 of a file, hex, streamed (models can be large). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Sign a package folder with an ed25519 private key: the package is checked
 * completely first (loadModelPackage: a broken package is refused with its
 * code, never signed), then `signature.json` is written (temp file + rename).
 */
export async function signPackage(dir: string, privateKey: KeyObject, now = new Date()): Promise<SignatureDocument> {
  requireEd25519(privateKey, 'the signing key');
  if (privateKey.type !== 'private') throw new SigningKeyInvalidError('the signing key', 'a public key cannot sign');
  const abs = resolve(dir);
  const pkg = await loadModelPackage(abs);
  const manifestBytes = await readFile(join(abs, MANIFEST_FILE));
  const files: Record<string, string> = {};
  for (const f of signedFiles(pkg.manifest)) files[f] = await sha256File(join(abs, f));
  const unsigned: Omit<SignatureDocument, 'signature'> = {
    schemaVersion: 1, algorithm: SIGNATURE_ALGORITHM, keyId: keyIdOf(privateKey), signedAt: now.toISOString(),
    package: { name: pkg.manifest.name, version: pkg.manifest.version }, manifestSha256: sha256Hex(manifestBytes), files,
  };
  const doc: SignatureDocument = { ...unsigned, signature: sign(null, signedBytes(unsigned), privateKey).toString('base64') };
  const tmp = join(abs, `.${SIGNATURE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`);
  await rename(tmp, join(abs, SIGNATURE_FILE));
  return doc;
}

// ------------------------------------------------------------------ verifying

async function readSignature(abs: string): Promise<SignatureDocument | null> {
  let text: string;
  try {
    text = await readFile(join(abs, SIGNATURE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ModelSignatureInvalidError(abs, `${SIGNATURE_FILE} unreadable (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelSignatureInvalidError(abs, `${SIGNATURE_FILE} is not JSON (${(err as Error).message})`);
  }
  if (!Value.Check(SignatureDocument, json)) {
    const e = [...Value.Errors(SignatureDocument, json)].slice(0, 3).map((x) => `${x.path || '/'}: ${x.message}`).join('; ');
    throw new ModelSignatureInvalidError(abs, `${SIGNATURE_FILE} is not a package signature (${e})`);
  }
  return json;
}

/**
 * Verify a package folder's signature against the policy, before anything of
 * it is loaded. Returns the signer, or null for an unsigned package where
 * signatures are not required. Throws the coded refusals listed at the top.
 */
export async function verifyPackage(dir: string, policy: SignaturePolicy): Promise<PackageSigner | null> {
  const abs = resolve(dir);
  const doc = await readSignature(abs);
  if (!doc) {
    if (policy.require) throw new ModelUnsignedError(abs);
    return null;
  }
  const key = policy.trusted.get(doc.keyId);
  if (!key) throw new ModelKeyUnknownError(abs, doc.keyId);
  const { signature, ...unsigned } = doc;
  let holds: boolean;
  try {
    holds = verify(null, signedBytes(unsigned), key, Buffer.from(signature, 'base64'));
  } catch {
    holds = false; // e.g. not 64 bytes
  }
  if (!holds) {
    throw new ModelSignatureInvalidError(abs, `the ed25519 signature does not verify with key ${doc.keyId}`);
  }
  // the signature holds: now the files must be the ones it names
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readFile(join(abs, MANIFEST_FILE));
  } catch {
    throw new ModelPackageMissingError(`${MANIFEST_FILE} missing in ${abs}`);
  }
  if (sha256Hex(manifestBytes) !== doc.manifestSha256) throw new ModelSignatureInvalidError(abs, `${MANIFEST_FILE} changed after signing`);
  const manifest = parseManifest(manifestBytes.toString('utf8'), join(abs, MANIFEST_FILE));
  if (doc.package.name !== manifest.name || doc.package.version !== manifest.version) {
    throw new ModelSignatureInvalidError(abs, `signed as ${doc.package.name}@${doc.package.version}, the manifest is ${manifest.name}@${manifest.version}`);
  }
  const want = signedFiles(manifest);
  const named = Object.keys(doc.files);
  const unnamed = want.filter((f) => !(f in doc.files));
  const extra = named.filter((f) => !want.includes(f));
  if (unnamed.length > 0 || extra.length > 0) {
    throw new ModelSignatureInvalidError(abs, `the signature names [${named.join(', ')}], the manifest's files are [${want.join(', ')}]`);
  }
  for (const f of want) {
    const got = await sha256File(join(abs, f)).catch(() => null);
    if (got === null) throw new ModelSignatureInvalidError(abs, `${f} is missing`);
    if (got !== doc.files[f]) throw new ModelSignatureInvalidError(abs, `${f} changed after signing (sha256 ${got}, signed ${doc.files[f]})`);
  }
  return { keyId: doc.keyId, signedAt: doc.signedAt };
}

/** The codes of a signature refusal (recorded as a refusal by the lifecycle). */
export const SIGNATURE_CODES: ReadonlySet<string> = new Set([
  'INSPECTOR_MODEL_UNSIGNED', 'INSPECTOR_MODEL_SIGNATURE_INVALID', 'INSPECTOR_MODEL_KEY_UNKNOWN',
]);
