import type { FastifyPluginAsync } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** What routes/index.ts lists: a Fastify route plugin, TypeBox-typed or plain. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RoutePlugin = FastifyPluginAsyncTypebox | FastifyPluginAsync<any>;

export { ErrorReply } from './schemas.js';
