/**
 * Bundles the QA UI (ui/src, Preact + TSX, uPlot) with esbuild into ui/dist:
 * app.js, app.css and an index.html that references them by content hash
 * (deterministic: the same sources give the same bytes). Takes well under a
 * second. Run: `npx tsx scripts/build-ui.ts [--dev]` (--dev: no minify, inline
 * source maps). Also imported by scripts/ensure-fixtures.ts.
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
export const UI_DIST = join(root, 'ui', 'dist');

export interface UiBuild { outDir: string; ms: number; files: Record<string, number> }

export async function buildUi(opts: { outDir?: string; dev?: boolean } = {}): Promise<UiBuild> {
  const t0 = performance.now();
  const outDir = opts.outDir ?? UI_DIST;
  const result = await build({
    entryPoints: { app: join(root, 'ui', 'src', 'main.tsx') },
    bundle: true,
    write: false,
    outdir: outDir,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: !opts.dev,
    sourcemap: opts.dev ? 'inline' : false,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': opts.dev ? '"development"' : '"production"' },
    loader: { '.svg': 'text' },
  });
  for (const w of result.warnings) console.warn(`build-ui: ${w.text} (${w.location?.file ?? ''}:${w.location?.line ?? ''})`);

  // write into a fresh sibling folder, then swap it in: a running server never sees half a build
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const files: Record<string, number> = {};
  const hashes: Record<string, string> = {};
  for (const f of result.outputFiles) {
    const name = basename(f.path);
    writeFileSync(join(tmp, name), f.contents);
    files[name] = f.contents.byteLength;
    hashes[name] = createHash('sha256').update(f.contents).digest('hex').slice(0, 12);
  }
  if (!hashes['app.js'] || !hashes['app.css']) throw new Error('build-ui: esbuild produced no app.js/app.css');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Inspector QA</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css?v=${hashes['app.css']}">
</head>
<body>
<div id="app"></div>
<script type="module" src="app.js?v=${hashes['app.js']}"></script>
</body>
</html>
`;
  writeFileSync(join(tmp, 'index.html'), html);
  files['index.html'] = Buffer.byteLength(html);
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
  return { outDir, ms: performance.now() - t0, files };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const b = await buildUi({ dev: process.argv.includes('--dev') });
  const sizes = Object.entries(b.files).map(([n, s]) => `${n} ${(s / 1024).toFixed(1)} KiB`).join(', ');
  console.log(`ui: built ${b.outDir} in ${b.ms.toFixed(0)} ms (${sizes})`);
}
