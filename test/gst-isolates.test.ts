/**
 * gstreamer-superficial in several worker threads (scripts/patches/gstreamer-superficial-thread-local.patch):
 * a capture worker that restarts its pipeline after another thread that loaded the addon has exited
 * must not crash the process. Run in a child process so that a segfault fails this test, not the run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('gstreamer-superficial across worker threads', () => {
  it('finds the appsink in one worker after another worker that loaded the addon has exited', () => {
    const script = fileURLToPath(new URL('./helpers/gst-isolates-main.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, r.stderr).toBeNull(); // SIGSEGV before the patch
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['appsink', 'appsink', 'appsink', 'appsink', 'appsink']);
  });
});
