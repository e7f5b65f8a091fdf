/**
 * A finished export as one zip archive, streamed: yazl reads each file from disk
 * when its turn comes (addFile → fs stream) and the archive leaves as it is
 * written, so a dataset of thousands of images never sits in memory.
 *
 * What goes in: every regular file under the export's own folder (manifest.json
 * included), found by walking that folder with lstat. Symbolic links and anything
 * else that is not a plain file are left out, so nothing outside the folder can be
 * pulled in; names are relative to the folder, '/'-separated, under one top folder
 * named after the export (`<id>-<format>/…`), in sorted order (the same export
 * gives the same entry order).
 *
 * PNGs are stored (already deflated: compressing them again costs CPU on the
 * station and gains nothing); text files (json, txt, yaml) are deflated.
 * Every entry carries the export's finish time as its mtime, not the files' own
 * (hard-link) times, so the archive says when the dataset was made.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { ZipFile } from 'yazl';

export interface ArchiveEntry { path: string; name: string; size: number }

/** Every regular file under `root`, sorted by its '/'-separated name; links and specials are skipped. */
export function listExportFiles(root: string): ArchiveEntry[] {
  const out: ArchiveEntry[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const name = prefix ? `${prefix}/${e.name}` : e.name;
      const st = lstatSync(path); // lstat: a symlink is never followed out of the folder
      if (st.isDirectory()) walk(path, name);
      else if (st.isFile()) out.push({ path, name, size: st.size });
    }
  };
  walk(root, '');
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const STORED = /\.(png|jpe?g|zip|gz)$/i;

export interface ExportArchive {
  /** the zip bytes, produced as the consumer reads */
  stream: Readable;
  /** the download's file name, `<folder>.zip` */
  fileName: string;
  entries: number;
}

/**
 * Open the archive of an export folder. Throws when the folder cannot be read or
 * has no manifest.json (a finished export always has one). A file that vanishes
 * while the archive is being sent fails the stream (the client sees a cut
 * download, never a silently incomplete archive).
 */
export function exportArchive(outDir: string, mtime: Date): ExportArchive {
  const top = basename(outDir);
  const files = listExportFiles(outDir);
  if (!files.some((f) => f.name === 'manifest.json')) throw new Error(`${outDir} has no manifest.json`);
  const zip = new ZipFile();
  for (const f of files) zip.addFile(f.path, `${top}/${f.name}`, { mtime, compress: !STORED.test(f.name) });
  const stream = zip.outputStream as Readable; // a PassThrough in yazl; typed as the older ReadableStream
  zip.on('error', (err: Error) => stream.destroy(err));
  zip.end();
  return { stream, fileName: `${top}.zip`, entries: files.length };
}
