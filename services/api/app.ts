import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PipelineError, type PipelineErrorCode } from '../core/index.ts';
import type { HealthRegistry } from '../platform/http/index.ts';
import { opsRoutes } from '../platform/http/index.ts';
import type { PipelineMetrics } from '../platform/observability/index.ts';
import type { RetentionPass } from '../retention/retentionPass.ts';
import { TokenRegistry, authenticate } from './auth.ts';
import { adminRetentionRoutes } from './routes/adminRetention.ts';

/**
 * The internal HTTP API. `buildApi` returns the app without listening, so tests use `app.inject()`.
 *
 * Layout: the ops routes (`/healthz`, `/metrics`, no token) at the root; one plugin per domain inside the `/v1`
 * scope, whose `onRequest` hook authenticates every route registered there (admin/retention now; lea, holds,
 * dsar, audit, billing, fraud as they come). Errors are `{"error": "<code>", "message": "<sentence>"}`, the
 * status taken from the one error table (core/errors/pipelineError.ts).
 */
export interface ApiDeps {
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly health: HealthRegistry;
  readonly tokens?: TokenRegistry;
  readonly retention?: RetentionPass;
}

/** fastify's own 4xx (bad JSON, wrong content type, body too large) as the error table's codes. */
const FASTIFY_STATUS_CODES: Record<number, PipelineErrorCode> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

export function buildApi(deps: ApiDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = deps.log.child({ component: 'api' });
  // Per-request access lines are off: client addresses are usage data, recorded only where audited.
  // Unknown body fields are an error, not silently dropped (fastify's default would remove them).
  const app = Fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false } },
  });
  const tokens = deps.tokens ?? TokenRegistry.empty();

  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  void app.register(opsRoutes, { metrics: deps.metrics, health: deps.health });
  void app.register(
    async (v1) => {
      v1.addHook('onRequest', authenticate(tokens));
      await v1.register(adminRetentionRoutes, { retention: deps.retention });
    },
    { prefix: '/v1' },
  );

  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` };
  });
  app.setErrorHandler(async (err: FastifyError | PipelineError | Error, _req, reply) => {
    if (err instanceof PipelineError) {
      if (err.httpStatus >= 500) deps.log.error({ err, code: err.code }, 'API request failed');
      reply.code(err.httpStatus);
      return { error: err.code, message: err.message };
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      reply.code(400);
      return { error: 'bad_request', message: fe.message };
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      reply.code(fe.statusCode);
      return { error: FASTIFY_STATUS_CODES[fe.statusCode] ?? 'bad_request', message: fe.message };
    }
    deps.log.error({ err }, 'API request failed');
    reply.code(500);
    return { error: 'internal_error', message: 'internal error; see the service log' };
  });
  return app;
}
