import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { PipelineMetrics } from '../shared/src/observability/metrics.ts';

/**
 * The internal HTTP API. `buildApp` returns the app without listening, so tests use `app.inject()`.
 * This release serves liveness and Prometheus metrics; the /v1 routes come with the internal API.
 */
export interface ApiDeps {
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  /** Extra liveness detail (counts only, never identifiers). */
  readonly health?: () => Record<string, unknown>;
}

export function buildApp(deps: ApiDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = deps.log.child({ component: 'api' });
  // Per-request access lines are off: client addresses are usage data, recorded only where audited.
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }) });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.get('/healthz', async () => ({ status: 'ok', ...(deps.health?.() ?? {}) }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` };
  });
  app.setErrorHandler(async (err: { statusCode?: number; message: string; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    reply.code(status);
    return { error: status >= 500 ? 'internal_error' : (err.code ?? 'bad_request').toLowerCase(), message: status >= 500 ? 'internal error' : err.message };
  });
  return app;
}
