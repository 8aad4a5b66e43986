import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PipelineError } from '../core/errors/pipelineError.ts';
import type { PipelineMetrics } from '../platform/observability/metrics.ts';
import type { RetentionPass } from '../retention/retentionPass.ts';
import { TokenRegistry, type Principal, type Role } from './auth.ts';

/**
 * The internal HTTP API. `buildApp` returns the app without listening, so tests use `app.inject()`.
 * Every /v1 route needs `Authorization: Bearer <token>` and a role; errors are
 * `{"error": "<code>", "message": "<sentence>"}` with a 4xx/5xx status.
 */
export interface ApiDeps {
  readonly log: Logger;
  readonly metrics: PipelineMetrics;
  readonly tokens?: TokenRegistry;
  readonly retention?: RetentionPass;
  /** Extra liveness detail (counts only, never identifiers). */
  readonly health?: () => Record<string, unknown>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function requireRole(role: Role) {
  return async (req: FastifyRequest): Promise<void> => {
    if (!req.principal) throw new ApiError(401, 'unauthenticated', 'missing or unknown bearer token');
    if (!req.principal.roles.includes(role)) throw new ApiError(403, 'forbidden', `this route needs the role ${role}`);
  };
}

function parseInstant(value: unknown, field: string): number {
  if (typeof value !== 'string') throw new ApiError(400, 'bad_request', `${field}: expected an ISO 8601 instant`);
  const t = Date.parse(value);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) throw new ApiError(400, 'bad_request', `${field}: "${value.slice(0, 40)}" is not an ISO 8601 instant`);
  return t;
}

export function buildApp(deps: ApiDeps): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = deps.log.child({ component: 'api' });
  // Per-request access lines are off: client addresses are usage data, recorded only where audited.
  // Unknown body fields are an error, not silently dropped (fastify's default would remove them).
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }), ajv: { customOptions: { removeAdditional: false } } });
  const tokens = deps.tokens ?? TokenRegistry.empty();

  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/')) return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new ApiError(401, 'unauthenticated', 'send Authorization: Bearer <token>');
    const principal = tokens.authenticate(m[1]!);
    if (!principal) throw new ApiError(401, 'unauthenticated', 'unknown bearer token');
    req.principal = principal;
  });
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  app.get('/healthz', async () => ({ status: 'ok', ...(deps.health?.() ?? {}) }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.post<{ Body: { now?: string; dry_run?: boolean } | undefined }>(
    '/v1/admin/retention/run',
    {
      preHandler: requireRole('admin'),
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { now: { type: 'string' }, dry_run: { type: 'boolean' } },
        },
      },
    },
    async (req) => {
      if (!deps.retention) throw new ApiError(503, 'unavailable', 'retention is not wired in this process');
      const now = req.body?.now === undefined ? Date.now() : parseInstant(req.body.now, 'now');
      return deps.retention.run({ now, dryRun: req.body?.dry_run ?? false, actor: req.principal?.name ?? 'api' });
    },
  );

  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` };
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      reply.code(err.statusCode);
      return { error: err.code, message: err.message };
    }
    if (err.validation) {
      reply.code(400);
      return { error: 'bad_request', message: err.message };
    }
    if (err instanceof PipelineError && err.disposition === 'dead-letter') {
      reply.code(400);
      return { error: err.code, message: err.message };
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      reply.code(err.statusCode);
      return { error: (err.code ?? 'bad_request').toLowerCase(), message: err.message };
    }
    deps.log.error({ err }, 'API request failed');
    reply.code(500);
    return { error: 'internal_error', message: 'internal error; see the service log' };
  });
  return app;
}
