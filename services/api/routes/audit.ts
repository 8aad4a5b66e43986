import type { FastifyPluginAsync } from 'fastify';
import { PipelineError } from '../../core/index.ts';
import type { AuditTrail } from '../../platform/audit/index.ts';
import { requireRole } from '../auth.ts';
import { audited, instantOf } from './common.ts';

/**
 * The audit trail (role `auditor`): entries page by page, and the integrity check that recomputes every chain against
 * its signed checkpoints and the anchors kept outside the database.
 */
interface AuditQuery {
  cursor?: string;
  limit?: string;
  from?: string;
  to?: string;
  action?: string;
  actor?: string;
}

const CURSOR = /^([A-Za-z0-9_.-]{1,64}):(\d{1,19})$/;

export const auditRoutes: FastifyPluginAsync<{ audit: AuditTrail }> = async (app, { audit }) => {
  app.get<{ Querystring: AuditQuery }>(
    '/audit',
    {
      preParsing: requireRole('auditor'),
      schema: {
        summary: 'The audit trail, oldest first, a page at a time (follow next_cursor)',
        tags: ['audit'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', maxLength: 96, description: 'next_cursor of the previous page' },
            // Query strings are text (this API coerces no types): digits, 1 to 1000.
            limit: { type: 'string', pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: 'entries per page, 1-1000 (default 100)' },
            from: { type: 'string', maxLength: 64 },
            to: { type: 'string', maxLength: 64 },
            action: { type: 'string', maxLength: 64 },
            actor: { type: 'string', maxLength: 128 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      let after: { chain: string; seq: number } | undefined;
      if (q.cursor !== undefined) {
        const m = CURSOR.exec(q.cursor);
        const seq = m ? Number(m[2]) : Number.NaN;
        // Sequence numbers are safe integers; a larger one was not given by this API (and the engine refuses it).
        if (!m || !Number.isSafeInteger(seq)) throw new PipelineError('bad_request', 'cursor: not a cursor this API gave (next_cursor of a page)');
        after = { chain: m[1]!, seq };
      }
      const limit = q.limit !== undefined ? Number(q.limit) : 100;
      const from = q.from !== undefined ? instantOf('from', q.from) : undefined;
      const to = q.to !== undefined ? instantOf('to', q.to) : undefined;
      // As every other range of this API: an empty or reversed one is a mistake, not an empty page.
      if (from !== undefined && to !== undefined && !(to > from))
        throw new PipelineError('bad_request', `range: "to" (${q.to}) must be after "from" (${q.from})`);
      const entries = await audit.page({
        limit,
        ...(after ? { after } : {}),
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
        ...(q.action !== undefined ? { action: q.action } : {}),
        ...(q.actor !== undefined ? { actor: q.actor } : {}),
      });
      const last = entries[entries.length - 1];
      audited(req, { action: 'audit.read', rows: entries.length });
      return { entries, next_cursor: entries.length === limit && last ? `${last.chain}:${last.seq}` : null };
    },
  );

  app.get(
    '/audit/verify',
    {
      preParsing: requireRole('auditor'),
      schema: { summary: 'Recompute every chain of the audit trail against its signed checkpoints and anchors; names the first bad entry', tags: ['audit'] },
    },
    async (req) => {
      const report = await audit.verify();
      audited(req, { action: 'audit.verify', rows: report.entries, detail: report.ok ? 'ok' : `break: ${report.first_bad_entry?.problem ?? ''}` });
      return report;
    },
  );
};
