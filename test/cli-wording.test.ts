/**
 * What the command line says (issue 16, item 5): a missing folder is one coded message naming
 * the path and what to give (no doubled `ENOENT: ENOENT:`), `models list/report/history` print
 * tables with one compared count and an agreement percentage (`--json` for scripts), and
 * `teach --out models/x/2.0.0` writes version 2.0.0. The CLI runs as a real process.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { formatHistory, formatModelList, formatShadowReport } from '../inspector/cli/models-command.js';
import { teachVersion } from '../inspector/cli/teach-command.js';

const work = mkdtempSync(join(tmpdir(), 'inspector-cli-wording-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const run = promisify(execFile);

/** Run the CLI; resolves with its output and exit code (a failure is an answer here, not a throw). */
async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'inspector/cli/main.ts', ...args],
      { cwd: resolve('.'), env: { ...process.env, INSPECTOR_LOG_LEVEL: 'error' } });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('a missing folder is one clear message', () => {
  it('teach --good with no such folder: the path, what to give, no doubled ENOENT', async () => {
    const missing = join(work, 'no-such-good');
    const r = await cli('teach', '--good', missing, '--out', join(work, 'x', '1.0.0'));
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/ENOENT/);
    expect(r.stderr.trim()).toBe(`inspector: INSPECTOR_TEACH_NO_IMAGES: No good images to teach from: there is no folder ${missing} (--good): `
      + 'give the folder that holds the good part images (png, jpg, bmp, tif)');
  }, 60_000);

  it('models push with no such folder: the path and what a package folder holds, before any station is asked', async () => {
    const missing = join(work, 'no-such-package');
    // an address nothing listens on: the message must be about the folder, not the connection
    const r = await cli('models', 'push', missing, '--url', 'http://127.0.0.1:9');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/ENOENT|fetch failed/);
    expect(r.stderr.trim()).toBe(`inspector: INSPECTOR_MODEL_PACKAGE_MISSING: Model package incomplete: there is no folder ${missing}: `
      + 'give the package folder (manifest.json + model.onnx, as `inspector teach --out` or the trainer writes it)');
    const empty = join(work, 'empty-package');
    mkdirSync(empty);
    const r2 = await cli('models', 'push', empty, '--url', 'http://127.0.0.1:9');
    expect(r2.stderr).toContain(`${empty} has no manifest.json: give the package folder`);
  }, 60_000);
});

describe('teach takes its version from --version or the --out path', () => {
  it('chooses, and refuses a contradiction', () => {
    expect(teachVersion('models/x/2.0.0', undefined)).toBe('2.0.0');
    expect(teachVersion('models/x/2.0.0/', undefined)).toBe('2.0.0');
    expect(teachVersion('models/x/taught', undefined)).toBe('1.0.0');
    expect(teachVersion('models/x/taught', '3.1.0')).toBe('3.1.0');
    expect(teachVersion('models/x/2.0.0', '2.0.0')).toBe('2.0.0');
    expect(() => teachVersion('models/x/2.0.0', '3.0.0')).toThrow(/--version 3.0.0 but --out models\/x\/2.0.0 ends in version 2.0.0/);
  });

  it('teach --out models/x/2.0.0 writes version 2.0.0 into the manifest', async () => {
    const gt = JSON.parse(readFileSync('test-images/train/ground-truth.json', 'utf8')) as { images: Array<{ file: string; label: string }> };
    const src = join(work, 'good');
    mkdirSync(src);
    for (const g of gt.images.filter((i) => i.label === 'good').slice(0, 2)) symlinkSync(resolve(`test-images/train/${g.file}`), join(src, g.file.split('/').pop()!));
    const out = join(work, 'models', 'bracket', '2.0.0');
    const r = await cli('teach', '--good', src, '--out', out, '--no-progress');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('taught bracket@2.0.0');
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toMatchObject({ name: 'bracket', version: '2.0.0' });
  }, 180_000);
});

describe('models list / history / report read as tables', () => {
  it('list: one row per package with its state in words', () => {
    const text = formatModelList([
      { name: 'default', version: '1.0.0', live: true, shadow: false, previous: 0, kind: 'anomaly_map', threshold: 0.5, description: 'the default' },
      { name: 'default', version: '1.1.0', live: false, shadow: true, previous: 0, kind: 'anomaly_map', threshold: 0.4, description: null },
      { name: 'old', version: '0.9.0', live: false, shadow: false, previous: 1, kind: null, threshold: null, description: null, problem: 'manifest unreadable' },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^model +state +kind +threshold +description$/);
    expect(lines[1]).toMatch(/^-+  -+  -+  -+  -+$/);
    expect(lines[2]).toMatch(/^default@1\.0\.0 +live +anomaly_map +0\.500 +the default$/);
    expect(lines[3]).toMatch(/^default@1\.1\.0 +shadow +anomaly_map +0\.400$/);
    expect(lines[4]).toMatch(/^old@0\.9\.0 +rollback #1, problem: manifest unreadable +\? +–$/);
    // padded columns: every row's kind starts where the header's does
    const at = lines[0]!.indexOf('kind');
    for (const l of lines.slice(2)) expect(l.slice(at)).toMatch(/^(anomaly_map|\?) /);
    expect(formatModelList([])).toMatch(/^no model packages in the registry \(push one with `inspector models push DIR`\)/);
  });

  it('history: when, who, action, model', () => {
    const text = formatHistory([{ at: '2026-12-04T10:00:00.000Z', actor: 'ml-alice', action: 'promote', model: { name: 'default', version: '1.1.0' }, detail: 'from default@1.0.0', signer: null }]);
    expect(text).toBe([
      'when                      who       action   model          signer  detail',
      '------------------------  --------  -------  -------------  ------  ------------------',
      '2026-12-04T10:00:00.000Z  ml-alice  promote  default@1.1.0          from default@1.0.0',
      '',
    ].join('\n'));
  });

  it('report: one compared count and the agreement in per cent (the in-run counter is not a second count)', () => {
    const text = formatShadowReport({
      shadow: { name: 'default', version: '1.1.0' }, live: { name: 'default', version: '1.0.0' }, since: '2026-12-04T10:00:00.000Z',
      stats: { offered: 700, compared: 614, skipped: 80, errors: 0, agree: 600, disagree: 14, imagesOffered: 3 },
      compared: 613, agree: 600, disagree: 13, shadowRejectsLivePasses: 9, shadowPassesLiveRejects: 4,
      disagreements: [{ run_id: 'r1', seq: 17, score: 0.61, verdict: 'reject', live_score: 0.42, live_verdict: 'pass', image_path: 'images/r1/17.png' }],
    });
    expect(text).toContain('compared 613 parts: agree 600 (97.9 %), disagree 13 (2.1 %)');
    expect(text).not.toContain('614');
    expect(text).toContain('this run: 80 parts skipped (shadow busy), 0 shadow errors');
    expect(text).toMatch(/r1 +17 +pass 0\.420 +reject 0\.610 +images\/r1\/17\.png/);
  });
});

describe('provider probing', () => {
  it('absent execution providers are one info line, not red [E:onnxruntime] lines on stderr', async () => {
    const script = `
      const { createSessionWithFallback } = await import(${JSON.stringify(resolve('inspector/inference/providers.ts'))});
      const { readFileSync } = await import('node:fs');
      const lines = [];
      const logger = { info: (o, m) => lines.push(['info', m]), warn: (o, m) => lines.push(['warn', m]) };
      const r = await createSessionWithFallback(readFileSync('models/default/1.0.0/model.onnx'),
        { providers: ['tensorrt', 'cuda', 'cpu'], intraOpNumThreads: 1, logger });
      console.log(JSON.stringify({ provider: r.provider, fallbacks: r.fallbacks.map((f) => f.provider), lines }));
      await r.session.release();`;
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: resolve('.') });
    expect(stderr).not.toMatch(/onnxruntime|Failed to load library/);
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { provider: string; fallbacks: string[]; lines: string[][] };
    expect(out.provider).toBe('cpu');
    expect(out.fallbacks).toEqual(['tensorrt', 'cuda']); // still recorded (health shows them)
    expect(out.lines).toEqual([['info', 'execution providers not on this machine: tensorrt, cuda; running on cpu']]);
  }, 60_000);
});
