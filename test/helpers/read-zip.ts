/**
 * Read a zip archive back in tests: entry name → bytes (directories left out).
 * adm-zip is in node_modules as a dependency of onnxruntime-node (no yauzl here); it is
 * an independent reader of what yazl wrote, so a malformed archive fails the test.
 */
import { createRequire } from 'node:module';

interface ZipEntryLike { entryName: string; isDirectory: boolean; getData(): Buffer }
const AdmZip = createRequire(import.meta.url)('adm-zip') as new (b: Buffer) => { getEntries(): ZipEntryLike[] };

export function readZip(buf: Buffer): Map<string, Buffer> {
  return new Map(new AdmZip(buf).getEntries().filter((e) => !e.isDirectory).map((e) => [e.entryName, e.getData()]));
}
