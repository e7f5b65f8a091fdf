#!/usr/bin/env node
// Entry point of the `inspector` command: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../inspector/cli/main.ts');
