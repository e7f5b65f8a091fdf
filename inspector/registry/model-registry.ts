/**
 * The on-disk registry: packages live as `<root>/<name>/<version>/`
 * (model.onnx, manifest.json, the extra files the manifest lists, and
 * signature.json when signed). A package is immutable: a new model is a new
 * version folder. Adding a package verifies its signature against the
 * station's policy (signing.ts), then checks it completely (loadModelPackage)
 * BEFORE it lands in the registry, and lands it with one rename, so a
 * half-copied package is never visible. Only the package's own files land:
 * a staged file the manifest does not list is refused (INSPECTOR_UPLOAD_NAME).
 *
 * Usable from any thread (plain async fs); the lifecycle (station main
 * thread) owns the pointers in RegistryState.
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadModelPackage, parseManifest, MANIFEST_FILE, type ModelPackage } from '../inference/model-package.js';
import type { Manifest } from '../inference/manifest-schema.js';
import { ModelExistsError, ModelNotFoundError, ModelUploadInvalidError, UploadNameError } from './errors.js';
import { OPEN_POLICY, SIGNATURE_FILE, packageFiles, verifyPackage, type PackageSigner, type SignaturePolicy } from './signing.js';
import type { ModelRef } from './registry-state.js';

const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const VERSION = /^\d+\.\d+\.\d+$/;
/** staging and trash folders live inside the root so renames stay on one filesystem */
export const STAGING_DIR = '.staging';
const TRASH_DIR = '.trash';

export interface RegistryEntry extends ModelRef {
  dir: string;
  manifest: Manifest | null;
  /** why the manifest could not be read (the package is listed anyway) */
  problem?: string;
}

/** Numeric MAJOR.MINOR.PATCH order. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

export function checkRef(ref: ModelRef): void {
  if (!NAME.test(ref.name) || !VERSION.test(ref.version)) throw new ModelNotFoundError(`${ref.name}@${ref.version} (not a valid name/version)`);
}

export interface AddedPackage {
  ref: ModelRef;
  pkg: ModelPackage;
  /** null: unsigned (allowed only where signatures are not required) */
  signer: PackageSigner | null;
}

export class ModelRegistry {
  readonly root: string;

  /** `policy`: the trusted keys and whether a signature is required (default: none trusted, not required) */
  constructor(root: string, readonly policy: SignaturePolicy = OPEN_POLICY) {
    this.root = resolve(root);
  }

  dirOf(ref: ModelRef): string {
    checkRef(ref);
    return join(this.root, ref.name, ref.version);
  }

  async has(ref: ModelRef): Promise<boolean> {
    return stat(join(this.dirOf(ref), MANIFEST_FILE)).then((s) => s.isFile(), () => false);
  }

  /** Every `<name>/<version>/` with a manifest.json, by name then version. */
  async list(): Promise<RegistryEntry[]> {
    const out: RegistryEntry[] = [];
    const names = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    for (const n of names.filter((d) => d.isDirectory() && NAME.test(d.name)).map((d) => d.name).sort()) {
      const versions = await readdir(join(this.root, n), { withFileTypes: true });
      for (const v of versions.filter((d) => d.isDirectory() && VERSION.test(d.name)).map((d) => d.name).sort(compareVersions)) {
        const dir = join(this.root, n, v);
        const text = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => null);
        if (text === null) continue;
        try {
          out.push({ name: n, version: v, dir, manifest: parseManifest(text) });
        } catch (err) {
          out.push({ name: n, version: v, dir, manifest: null, problem: (err as Error).message });
        }
      }
    }
    return out;
  }

  /** The manifest of one package (checked against the schema only). */
  async manifest(ref: ModelRef): Promise<Manifest> {
    const text = await readFile(join(this.dirOf(ref), MANIFEST_FILE), 'utf8').catch(() => null);
    if (text === null) throw new ModelNotFoundError(`${ref.name}@${ref.version}`);
    return parseManifest(text);
  }

  /** Verify a registered package's signature against the policy (nothing is loaded). */
  async verify(ref: ModelRef): Promise<PackageSigner | null> {
    if (!(await this.has(ref))) throw new ModelNotFoundError(`${ref.name}@${ref.version}`);
    return verifyPackage(this.dirOf(ref), this.policy);
  }

  /** Full check of a registered package (hashes, graph contract). */
  async check(ref: ModelRef): Promise<ModelPackage> {
    if (!(await this.has(ref))) throw new ModelNotFoundError(`${ref.name}@${ref.version}`);
    return loadModelPackage(this.dirOf(ref));
  }

  /** A fresh empty staging folder inside the root. */
  async stagingDir(): Promise<string> {
    const dir = join(this.root, STAGING_DIR, `${Date.now()}-${Math.random().toString(36).slice(2, 10)}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Verify a staged package's signature (before anything of it loads), check
   * it completely, refuse files its manifest does not list, then move it to
   * `<root>/<name>/<version>/` (name and version from its manifest). The
   * staging folder is consumed (moved, or removed when refused).
   */
  async addStaged(stagingDir: string): Promise<AddedPackage> {
    try {
      const signer = await verifyPackage(stagingDir, this.policy);
      const pkg = await loadModelPackage(stagingDir);
      const allowed = new Set([...packageFiles(pkg.manifest), SIGNATURE_FILE]);
      const stray = (await readdir(stagingDir)).filter((f) => !allowed.has(f));
      if (stray.length > 0) throw new UploadNameError(`${stray.map((f) => `'${f}'`).join(', ')} not a file the manifest lists`);
      const ref = { name: pkg.manifest.name, version: pkg.manifest.version };
      const dest = this.dirOf(ref);
      if (await stat(dest).then(() => true, () => false)) throw new ModelExistsError(`${ref.name}@${ref.version}`);
      await mkdir(join(this.root, ref.name), { recursive: true });
      await rename(stagingDir, dest);
      return { ref, pkg: { ...pkg, dir: dest }, signer };
    } finally {
      await rm(stagingDir, { recursive: true, force: true });
    }
  }

  /**
   * Copy a package folder (e.g. `inspector models push DIR` on the station itself) into the
   * registry: only its own files (model.onnx, manifest.json, signature.json, the listed files).
   */
  async addFrom(dir: string): Promise<AddedPackage> {
    const src = resolve(dir);
    if (!(await stat(src).then((s) => s.isDirectory(), () => false))) throw new ModelUploadInvalidError(`${src} is not a folder`);
    const text = await readFile(join(src, MANIFEST_FILE), 'utf8').catch(() => null);
    const names = [...(text === null ? packageFiles({}) : packageFiles(parseManifest(text, join(src, MANIFEST_FILE)))), SIGNATURE_FILE];
    const staging = await this.stagingDir();
    // a file that is not there is reported by addStaged's checks, with its code
    for (const f of names) await copyFile(join(src, f), join(staging, f)).catch(() => undefined);
    return this.addStaged(staging);
  }

  /** Remove a package: renamed out of sight first, then deleted. */
  async remove(ref: ModelRef): Promise<void> {
    if (!(await this.has(ref))) throw new ModelNotFoundError(`${ref.name}@${ref.version}`);
    const trash = join(this.root, TRASH_DIR, `${ref.name}-${ref.version}-${Date.now()}`);
    await mkdir(join(this.root, TRASH_DIR), { recursive: true });
    await rename(this.dirOf(ref), trash);
    await rm(trash, { recursive: true, force: true });
    await rmdir(join(this.root, ref.name)).catch(() => undefined); // only when empty
  }
}
