/**
 * Start a worker thread whose entry point is a TypeScript module, in every way
 * the appliance runs: under `tsx` (the station) and under vitest (forks pool).
 *
 * Why not `new Worker(new URL('./x.ts', import.meta.url), { execArgv })`?
 * On Node 20 that fails in BOTH environments with ERR_UNKNOWN_FILE_EXTENSION:
 *  - under tsx the worker inherits `--import tsx/dist/loader.mjs`, but Node 20
 *    resolves and loads the worker's entry module before those hooks apply;
 *  - under vitest the fork's execArgv has no TypeScript loader at all (vitest
 *    transforms modules itself, in-process, and that does not reach workers).
 *
 * What works in both: a tiny eval bootstrap (no extra file on disk) that
 * registers tsx's ESM hooks inside the new thread with `tsx/esm/api`'s
 * `register()` and then dynamically imports the real entry. The entry and
 * everything it imports (`./foo.js` → `./foo.ts`) then load through tsx.
 * tsx's own flags are removed from the inherited execArgv so the hooks are
 * registered once; every other flag (`--conditions`, memory flags) is kept.
 *
 * A `.js`/`.mjs` entry (compiled build) starts as a plain Worker.
 * A failure while importing the entry surfaces as the Worker's 'error' event
 * (then 'exit'), exactly like a plain Worker whose module throws.
 */
import { createRequire } from 'node:module';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { threadNice } from './thread-priority.js';

const require = createRequire(import.meta.url);

/** Absolute path of tsx's CommonJS build of `tsx/esm/api` (register()). */
let tsxApiPath: string | null = null;
function resolveTsxApi(): string {
  tsxApiPath ??= require.resolve('tsx/esm/api');
  return tsxApiPath;
}

export type SpawnTsWorkerOptions = Omit<WorkerOptions, 'eval' | 'workerData'> & {
  /**
   * nice of the new thread, set before its entry loads (so the threads it creates inherit it);
   * default: the process's base when the station raised its hot path (core/thread-priority.ts), else inherited
   */
  nice?: number;
};

const TS_ENTRY = /\.(?:ts|mts|cts|tsx)$/;

/** Flags that load tsx itself; the bootstrap registers tsx once, explicitly. */
function isTsxFlagValue(v: string | undefined): boolean {
  return v !== undefined && /[\\/]tsx[\\/]dist[\\/]/.test(v);
}

/** Parent execArgv without tsx's `--require preflight` / `--import loader` pairs. */
export function inheritableExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '--require' || a === '-r' || a === '--import' || a === '--loader'
      || a === '--experimental-loader') && isTsxFlagValue(argv[i + 1])) {
      i++;
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0 && a.startsWith('--') && isTsxFlagValue(a.slice(eq + 1))) continue;
    // V8 flags (--trace-gc, --max-semi-space-size, …) are process-wide already and
    // a Worker refuses them in execArgv; keep Node's own per-isolate options.
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (a.startsWith('--') && !process.allowedNodeEnvironmentFlags.has(name) && !name.startsWith('--cpu-prof')) continue;
    if (process.allowedNodeEnvironmentFlags.has(name) && /^--max-.*-space-size$|^--stack-size$/.test(name)) continue;
    out.push(a);
  }
  return out;
}

/** The eval source of the bootstrap (CommonJS script context: `require` exists). */
export function bootstrapSource(entry: URL, nice?: number, ts = true): string {
  return [
    // per thread on Linux; not permitted (raising without CAP_SYS_NICE / RLIMIT_NICE): keep the inherited one
    ...(nice === undefined ? [] : [`try { require('node:os').setPriority(0, ${Math.trunc(nice)}); } catch {}`]),
    ...(ts ? [`const { register } = require(${JSON.stringify(resolveTsxApi())});`, 'register();'] : []),
    `import(${JSON.stringify(entry.href)}).catch((err) => {`,
    '  process.nextTick(() => { throw err; });',
    '});',
  ].join('\n');
}

/**
 * Start `url` (a file: URL, usually `new URL('./x-worker.ts', import.meta.url)`)
 * as a worker thread. `workerData` reaches the entry as
 * `worker_threads.workerData`; SharedArrayBuffers in it are shared, not copied.
 */
export function spawnTsWorker(url: URL, workerData?: unknown, options: SpawnTsWorkerOptions = {}): Worker {
  if (url.protocol !== 'file:') throw new TypeError(`spawnTsWorker needs a file: URL, got ${url.href}`);
  const { nice: asked, ...workerOptions } = options;
  const execArgv = workerOptions.execArgv ?? inheritableExecArgv();
  const nice = asked ?? threadNice('normal');
  if (!TS_ENTRY.test(url.pathname)) {
    if (nice === undefined) return new Worker(url, { ...workerOptions, execArgv, workerData });
    return new Worker(bootstrapSource(url, nice, false), { ...workerOptions, execArgv, workerData, eval: true });
  }
  return new Worker(bootstrapSource(url, nice), { ...workerOptions, execArgv, workerData, eval: true });
}
