import { defineConfig } from 'vitest/config';

// Each running GStreamer pipeline holds two libuv pool threads (pull + bus);
// node-opcua and sharp use the pool too. Forked test processes inherit this.
process.env.UV_THREADPOOL_SIZE ??= '16';

// Native addons (GStreamer, ONNX Runtime, SQLite) and real OPC UA servers on
// loopback: run test files one at a time in forked processes on the 2-core CI.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits on something to happen (a page redrawn, a row written): on a loaded
    // 2-core machine that can take seconds, not the default 1 s. A poll's own timeout wins.
    expect: { poll: { timeout: 15_000 } },
    reporters: ['default'],
  },
});
