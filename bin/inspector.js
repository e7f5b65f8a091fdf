#!/usr/bin/env node
// Entry point of the `inspector` command: loads the TypeScript sources through tsx.
// Each running GStreamer pipeline holds two libuv pool threads (pull + bus poll);
// the pool is sized before anything uses it.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { register } = await import('tsx/esm/api');

register();
await import('../inspector/cli/main.ts');
