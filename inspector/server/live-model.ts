/**
 * The live model's name, version, threshold and defect classes: asked of the
 * station (RPC `model`), cached for a second; without a station (tests) the
 * app's `model` option answers.
 */
import type { FastifyInstance } from 'fastify';
import type { LiveModelInfo } from './station-view.js';
import { ResultsUnavailableError } from './errors.js';

const caches = new WeakMap<FastifyInstance, { at: number; info: LiveModelInfo }>();

export async function liveModel(app: FastifyInstance): Promise<LiveModelInfo> {
  if (app.station.call) {
    const cached = caches.get(app);
    if (cached && Date.now() - cached.at < 1000) return cached.info;
    const info = await app.station.call<LiveModelInfo>('model');
    caches.set(app, { at: Date.now(), info });
    return info;
  }
  if (app.settings.model) return app.settings.model;
  throw new ResultsUnavailableError('no station and no model configured');
}

/** Defect classes of a manifest's outputs: `defectClasses`, else `classes` minus 'good'. */
export function classesOf(outputs: unknown): string[] {
  const o = (outputs ?? {}) as { defectClasses?: unknown; classes?: unknown };
  const list = Array.isArray(o.defectClasses) ? o.defectClasses : Array.isArray(o.classes) ? o.classes.filter((c) => c !== 'good') : [];
  return list.filter((c): c is string => typeof c === 'string');
}
