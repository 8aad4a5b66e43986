import type { FastifyPluginAsync } from 'fastify';
import { MONTH, MONTH_RULE, PipelineError, isoInstantProblem, parseIsoInstant } from '../../core/index.ts';
import type { RetentionPass } from '../../retention/retentionPass.ts';
import { requireRole } from '../auth.ts';

/**
 * `POST /v1/admin/retention/run` (role `admin`): one retention pass, the same report as `cdr retention run`.
 * `GET /v1/retention/reports/{month}` (`dpo`, `auditor`, `admin`): the signed destruction report of a month.
 *
 * A pass destroys for good, so the route cannot destroy by accident: a real run (`dry_run` false, the default) uses
 * the real clock; `now` moves the clock of a dry run only, unless the process runs with CDR_ALLOW_CLOCK_OVERRIDE=1
 * (tests and retention drills). No type coercion: `"false"`, `0` or `null` for `dry_run` are refused, not read as
 * false. The caller's token name is recorded with the pass.
 */
export interface AdminRetentionOptions {
  readonly retention: RetentionPass | undefined;
  readonly allowClockOverride: boolean;
}

export const adminRetentionRoutes: FastifyPluginAsync<AdminRetentionOptions> = async (app, opts) => {
  app.post<{ Body: { now?: string; dry_run?: boolean } | undefined }>(
    '/admin/retention/run',
    {
      preParsing: requireRole('admin'),
      preValidation: [
        // No body at all is `{}`: every field is optional (a real run at the real clock). A JSON `null` is a body, and
        // not an object: refused like `[]` (found from outside: it started a real pass).
        async (req) => {
          if (req.body === undefined) req.body = {};
        },
      ],
      // Other fields are welcome only beside an explicit `dry_run` (ADR 0041): without it the pass is real, and an
      // unread `dryRun` must not make it so.
      config: { strictUnless: 'dry_run' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: true,
          properties: { now: { type: 'string', maxLength: 64 }, dry_run: { type: 'boolean' } },
        },
      },
    },
    async (req) => {
      if (!opts.retention) throw new PipelineError('unavailable', 'retention is not wired in this process');
      const dryRun = req.body?.dry_run ?? false;
      let now = Date.now();
      const clockMoved = req.body?.now !== undefined;
      if (req.body?.now !== undefined) {
        const at = parseIsoInstant(req.body.now);
        if (at === undefined) throw new PipelineError('bad_request', isoInstantProblem('now', req.body.now));
        if (!dryRun && !opts.allowClockOverride) {
          throw new PipelineError(
            'bad_request',
            'now: only a dry run may move the clock (a real run destroys at the real time); send "dry_run": true, or run the process with CDR_ALLOW_CLOCK_OVERRIDE=1 for a retention drill',
          );
        }
        now = at;
      }
      return opts.retention.run({ now, dryRun, actor: req.principal?.name ?? 'api', clockMoved });
    },
  );

  // The signed destruction report of one month (`cdr retention report --month M` asks this route when `cdr start` holds
  // the store). Read-only; verifiable offline with `cdr retention verify-report`.
  app.get<{ Params: { month: string } }>(
    '/retention/reports/:month',
    {
      preParsing: requireRole('dpo', 'auditor', 'admin'),
      schema: { params: { type: 'object', required: ['month'], properties: { month: { type: 'string', pattern: MONTH.source, description: MONTH_RULE } } } },
    },
    async (req) => {
      if (!opts.retention) throw new PipelineError('unavailable', 'retention is not wired in this process');
      return opts.retention.record.report(req.params.month);
    },
  );
};
