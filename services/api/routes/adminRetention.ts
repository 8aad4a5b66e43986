import type { FastifyPluginAsync } from 'fastify';
import { PipelineError } from '../../core/index.ts';
import type { RetentionPass } from '../../retention/retentionPass.ts';
import { requireRole } from '../auth.ts';

/** `POST /v1/admin/retention/run` (role `admin`): one retention pass, the same report as `cdr retention run`. */
export interface AdminRetentionOptions {
  readonly retention: RetentionPass | undefined;
}

function parseInstant(value: string, field: string): number {
  const t = Date.parse(value);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}T/.test(value))
    throw new PipelineError('bad_request', `${field}: "${value.slice(0, 40)}" is not an ISO 8601 instant`);
  return t;
}

export const adminRetentionRoutes: FastifyPluginAsync<AdminRetentionOptions> = async (app, opts) => {
  app.post<{ Body: { now?: string; dry_run?: boolean } | undefined }>(
    '/admin/retention/run',
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
      if (!opts.retention) throw new PipelineError('unavailable', 'retention is not wired in this process');
      const now = req.body?.now === undefined ? Date.now() : parseInstant(req.body.now, 'now');
      return opts.retention.run({ now, dryRun: req.body?.dry_run ?? false, actor: req.principal?.name ?? 'api' });
    },
  );
};
