/**
 * Route plugins, registered by app.ts in this order after the external and app
 * plugins. Each plugin declares full paths (`/api/...`), a TypeBox schema on
 * every route and `preHandler: app.requireRole(...)` on every route that needs
 * a login. Add yours with one line.
 */
import type { RoutePlugin } from './route-plugin.js';
import { healthRoutes } from './health.js';
import { metricsRoutes } from './metrics.js';
import { authRoutes } from './auth.js';
import { accountAdminRoutes, userRoutes } from './users.js';
import { partRoutes } from './parts.js';
import { reviewRoutes } from './review.js';
import { liveRoutes } from './live.js';
import { exportRoutes } from './exports.js';
import { modelRoutes } from './models.js';
import { calibrationRoutes } from './calibration.js';
import { calibrationReferenceRoutes } from './calibration-reference.js';

export const routes: RoutePlugin[] = [
  healthRoutes,
  metricsRoutes,
  authRoutes,
  userRoutes,
  accountAdminRoutes,
  partRoutes,
  reviewRoutes,
  liveRoutes,
  exportRoutes,
  modelRoutes,
  calibrationRoutes,
  calibrationReferenceRoutes,
];
