import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { PipelineMetrics } from '../observability/index.ts';
import type { HealthRegistry } from './health.ts';

/**
 * The operations endpoints every process serves: `GET /healthz` (200 while every component is ok, else 503 with
 * `{"status":"degraded"|"down","reasons":[…]}`) and `GET /metrics` (Prometheus). A plugin, so the internal API
 * mounts the same routes, and a small server of its own for processes without the API (ingest, retention).
 */
export interface OpsOptions {
  readonly metrics: PipelineMetrics;
  readonly health: HealthRegistry;
}

export const opsRoutes: FastifyPluginAsync<OpsOptions> = async (app, opts) => {
  app.get('/healthz', async (_req, reply) => {
    const report = opts.health.report();
    reply.code(report.status === 'ok' ? 200 : 503);
    return report;
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });
};

export interface OpsServer {
  readonly app: FastifyInstance;
  readonly address: string;
  close(): Promise<void>;
}

export async function startOpsServer(opts: OpsOptions & { readonly host: string; readonly port: number; readonly log: Logger }): Promise<OpsServer> {
  // Per-request access lines are off: nothing here is worth a log line per scrape.
  const loggerInstance: FastifyBaseLogger = opts.log.child({ component: 'ops-http' });
  const app = Fastify({ loggerInstance, logController: new LogController({ disableRequestLogging: true }) });
  await app.register(opsRoutes, { metrics: opts.metrics, health: opts.health });
  app.setNotFoundHandler(async (req, reply) => {
    reply.code(404);
    return { error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}; this process serves /healthz and /metrics` };
  });
  const address = await app.listen({ host: opts.host, port: opts.port });
  return { app, address, close: () => app.close() };
}
