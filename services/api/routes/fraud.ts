import type { FastifyPluginAsync } from 'fastify';
import { PipelineError, RULE_NAMES } from '../../core/index.ts';
import { alertView, type AlertStore } from '../../fraud/alertStore.ts';
import { requireRole } from '../auth.ts';
import { audited, errorSchema, instantOf, isoString } from './common.ts';

/** Fraud alerts (role `fraud`): alerts whose activity overlaps [from, to), with their evidence. No identifier anywhere. */
export const fraudRoutes: FastifyPluginAsync<{ alerts: AlertStore; clock: () => number }> = async (app, { alerts, clock }) => {
  app.get<{ Querystring: { from?: string; to?: string; rule?: string; limit?: string } }>(
    '/fraud/alerts',
    {
      preParsing: requireRole('fraud'),
      schema: {
        summary: 'Fraud alerts whose anomalous activity overlaps [from, to) (default: the last 24 hours), newest first',
        tags: ['fraud'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: isoString,
            to: isoString,
            rule: { type: 'string', maxLength: 64, description: `one of ${RULE_NAMES.join(', ')} (a hyphen reads as an underscore)` },
            limit: {
              type: 'string',
              maxLength: 12,
              description: 'at most this many alerts (default 1000, at most 10000); `truncated` says whether more matched',
            },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema },
      },
    },
    async (req) => {
      const now = clock();
      const to = req.query.to !== undefined ? instantOf('to', req.query.to) : now + 60_000;
      const from = req.query.from !== undefined ? instantOf('from', req.query.from) : to - 86_400_000;
      if (!(to > from))
        throw new PipelineError(
          'bad_request',
          req.query.to === undefined ? 'from: must be before now (without "to" the range ends now)' : 'range: "to" must be after "from"',
        );
      const limitText = req.query.limit ?? '1000';
      const limit = /^\d{1,5}$/.test(limitText) ? Number(limitText) : Number.NaN;
      if (!(limit >= 1 && limit <= 10_000)) throw new PipelineError('bad_request', 'limit: a whole number between 1 and 10000');
      const rule = req.query.rule?.replace(/-/g, '_');
      if (rule !== undefined && !(RULE_NAMES as readonly string[]).includes(rule))
        throw new PipelineError('bad_request', `rule: one of ${RULE_NAMES.join(', ')}`);
      // One more than asked: whether the list was cut is said, not left to guess (found from outside).
      const list = await alerts.list(from, to, rule, limit + 1);
      const shown = list.slice(0, limit);
      audited(req, { action: 'fraud.alerts', rows: shown.length });
      return { alerts: shown.map(alertView), truncated: list.length > limit };
    },
  );
};
