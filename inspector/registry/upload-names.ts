/**
 * The names of a model upload's parts (routes/models.ts, POST /api/models).
 * Each part is stored under its file name in the staging folder, so a name
 * must be a plain file name (no path separator, no `..`, no leading dot),
 * sent once, and one of the package's files: model.onnx, manifest.json,
 * signature.json and the extra files the manifest lists. Every refusal is
 * INSPECTOR_UPLOAD_NAME (400), raised before the part is written; parts that
 * came before manifest.json are checked against it when it arrives, or at the
 * end. The registry checks the staged folder again before it lands
 * (ModelRegistry.addStaged).
 */
import type { Manifest } from '../inference/manifest-schema.js';
import { MANIFEST_FILE } from '../inference/model-package.js';
import { UploadNameError } from './errors.js';
import { SIGNATURE_FILE, packageFiles } from './signing.js';

/** the manifest's own pattern for package file names (manifest-schema.ts PackageFileName) */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

const shown = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

export class UploadNames {
  private readonly seen: string[] = [];
  /** the files the package may have; null until manifest.json arrived */
  private allowed: Set<string> | null = null;

  /**
   * A part: its form field name and its file name as sent (not cut to a base
   * name). Returns the name to store it under; throws UploadNameError.
   */
  accept(fieldname: string | undefined, filename: string | undefined): string {
    const name = filename ?? '';
    if (!PLAIN_NAME.test(name) || name.includes('..')) {
      throw new UploadNameError(`part file name ${shown(name)} is not a plain file name (a path separator, '..', a leading dot or an empty name)`);
    }
    const field = fieldname ?? '';
    if (/[/\\]|\.\./.test(field)) throw new UploadNameError(`part field name ${shown(field)} is a path`);
    if (this.seen.includes(name)) throw new UploadNameError(`part ${shown(name)} sent twice`);
    this.check(name);
    this.seen.push(name);
    return name;
  }

  /** manifest.json arrived: the parts so far, and every later one, must be its files. */
  listed(manifest: Manifest): void {
    this.allowed = new Set([...packageFiles(manifest), SIGNATURE_FILE]);
    for (const n of this.seen) this.check(n);
  }

  /** The upload ended. Without a manifest there is nothing to check against: the package checks report it missing. */
  complete(): void {
    for (const n of this.seen) this.check(n);
  }

  private check(name: string): void {
    const allowed = this.allowed;
    if (allowed === null) return; // before manifest.json: checked when it arrives
    if (!allowed.has(name)) {
      throw new UploadNameError(`${shown(name)} is not a file of this package (the manifest lists ${[...allowed].filter((f) => f !== MANIFEST_FILE).join(', ')}, plus manifest.json)`);
    }
  }
}
