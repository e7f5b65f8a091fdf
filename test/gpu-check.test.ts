/**
 * scripts/gpu-check.sh on a machine without a GPU (CI never has one): its usage, and a dry run that
 * must say, provider by provider, that CUDA and TensorRT did not load and why, and write the summary.
 * The GPU half (engines built and reused, benchmarks per provider) runs only on a GPU machine.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = 'scripts/gpu-check.sh';
const has = (cmd: string): boolean => { try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; } };

function run(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { timeout: 240_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

describe('scripts/gpu-check.sh without a GPU', () => {
  const out = mkdtempSync(join(tmpdir(), 'gpu-check-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('--help prints the usage; an unknown option or provider is a usage error (64)', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--dry-run/);
    expect(help.out).toMatch(/--provider-libs/);
    expect((await run(['--bogus'])).code).toBe(64);
    expect((await run(['--providers', 'cuda,opencl'])).code).toBe(64);
  }, 60_000);

  it.skipIf(has('nvidia-smi'))('--dry-run says CUDA and TensorRT did not load and why, benchmarks nothing, writes the summary', async () => {
    const dir = join(out, 'dry');
    const r = await run(['--dry-run', '--providers', 'cuda,tensorrt,cpu', '--out', dir]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/cuda: NOT LOADED: .*Failed to load shared library/);
    expect(r.out).toMatch(/tensorrt: NOT LOADED: .*Failed to load shared library/);
    expect(r.out).toMatch(/hint: no NVIDIA GPU/);
    expect(r.out).toMatch(/cpu: loaded/);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as {
      dry_run: boolean; providers: Array<{ provider: string; loaded: boolean; reason: string | null; benchmark: string | null }> };
    expect(summary.dry_run).toBe(true);
    expect(summary.providers.map((p) => [p.provider, p.loaded])).toEqual([['cuda', false], ['tensorrt', false], ['cpu', true]]);
    for (const p of summary.providers.filter((x) => !x.loaded)) expect(p.reason).toMatch(/Failed to load shared library/);
    expect(readdirSync(dir).filter((f) => /^(bench|runner)-/.test(f))).toEqual([]); // a dry run benchmarks nothing
    expect(existsSync(join(dir, 'probe-cuda.json'))).toBe(true);
    // --strict: no GPU provider loaded is a failure
    const strict = await run(['--dry-run', '--strict', '--providers', 'cuda', '--out', join(out, 'strict')]);
    expect(strict.code).toBe(1);
  }, 480_000); // two dry runs start a model runner per provider: slow on a loaded 2-core box

  it('benchmarks a provider that loads: the model runner on frames from memory with --runner-only (cpu here)', async () => {
    const dir = join(out, 'runner');
    const r = await run(['--providers', 'cpu', '--runner-only', '--parts', '50', '--rate', '0', '--out', dir]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/cpu: benchmark done: .*runner-cpu\.json \(model runner, frames from memory \(--runner-only\)\)/);
    const report = JSON.parse(readFileSync(join(dir, 'runner-cpu.json'), 'utf8')) as {
      mode: string; loaded: boolean; frames: number; provider_ran: string; infer_and_decide_ms: { p50: number } };
    expect(report).toMatchObject({ loaded: true, frames: 50, provider_ran: 'cpu' });
    expect(report.mode).toMatch(/frames from memory/);
    expect(Number.isFinite(report.infer_and_decide_ms.p50)).toBe(true);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { providers: Array<{ benchmark: string | null }> };
    expect(summary.providers[0]!.benchmark).toMatch(/runner-cpu\.json/);
  }, 240_000);

  it.skipIf(!has('shellcheck'))('is shellcheck-clean', () => {
    expect(() => execFileSync('shellcheck', [SCRIPT], { encoding: 'utf8' })).not.toThrow();
  });
});
