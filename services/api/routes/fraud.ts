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
            rule: { type: 'string', enum: [...RULE_NAMES] },
            limit: { type: 'string', pattern: '^[0-9]{1,5}$', description: 'at most this many alerts (default 1000, at most 10000)' },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema },
      },
    },
    async (req) => {
      const now = clock();
      const to = req.query.to !== undefined ? instantOf('to', req.query.to) : now + 60_000;
      const from = req.query.from !== undefined ? instantOf('from', req.query.from) : to - 86_400_000;
      if (!(to > from)) throw new PipelineError('bad_request', `range: "to" must be after "from"`);
      const limit = req.query.limit !== undefined ? Number(req.query.limit) : 1000;
      if (limit < 1 || limit > 10_000) throw new PipelineError('bad_request', 'limit: between 1 and 10000');
      const list = await alerts.list(from, to, req.query.rule, limit);
      audited(req, { action: 'fraud.alerts', rows: list.length });
      return { alerts: list.map(alertView) };
    },
  );
};
