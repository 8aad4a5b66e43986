import type { FastifyPluginAsync } from 'fastify';
import { PipelineError } from '../../core/index.ts';
import type { LegalHold, LegalHolds } from '../../platform/holds/index.ts';
import { requireRole } from '../auth.ts';
import { audited, errorSchema, FLAGGED_LOOKUP, unknownId, freeText, identifierSchema, isoString, rangeOf, subjectOf, type IdentifierBody } from './common.ts';

/**
 * Legal holds over HTTP (role `legal`), with the semantics the retention pass implements (docs/retention.md):
 * placing a hold copies the matching live records under the hold's own key, so they outlive the identifier window
 * while everything else is deleted on time; releasing it lets the next pass destroy the copy and the key. Releasing
 * twice is harmless. A hold lists no identifier.
 */
interface HoldBody {
  case_reference: string;
  identifier: IdentifierBody;
  from: string;
  to: string;
  reason: string;
  confidential?: boolean;
}

const HOLD_ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } } as const;

export const holdRoutes: FastifyPluginAsync<{ holds: LegalHolds }> = async (app, { holds }) => {
  const about = (h: LegalHold) => ({ caseReference: h.case_reference, legalBasis: h.reason, requestId: h.hold_id, confidential: h.confidential });

  app.post<{ Body: HoldBody }>(
    '/holds',
    {
      preParsing: requireRole('legal'),
      schema: {
        summary: 'Place a legal hold: the records of one identifier in a range are preserved past the identifier window until released',
        tags: ['legal holds'],
        body: {
          type: 'object',
          // Fields it does not read are welcome and ignored; a misspelt one is refused (services/api/bodyFields.ts).
          additionalProperties: true,
          required: ['case_reference', 'identifier', 'from', 'to', 'reason'],
          properties: {
            case_reference: freeText(256, 'the case the hold is for'),
            identifier: identifierSchema,
            from: isoString,
            to: isoString,
            reason: freeText(1024, 'why the records are held'),
            confidential: { type: 'boolean', description: 'the data subject must not learn of this hold' },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const subject = subjectOf(b.identifier);
      // A hold may reach into the future (records still to come), but not beyond what the traffic data is kept for.
      const { from, to } = rangeOf(b.from, b.to, { windowBound: false });
      if (from < Date.UTC(2000, 0, 1) || to > Date.now() + 11 * 366 * 86_400_000) {
        throw new PipelineError('bad_request', 'range: a hold covers 2000-01-01 to at most 11 years ahead');
      }
      const placed = await holds.place(
        {
          caseReference: b.case_reference.trim(),
          reason: b.reason.trim(),
          identifier: b.identifier,
          from,
          to,
          actor: req.principal?.name ?? 'api',
          confidential: b.confidential ?? false,
        },
        subject,
      );
      audited(req, { action: 'hold.place', subject, rows: placed.copied, ...about(placed.hold), ...(subject.valid ? {} : { detail: FLAGGED_LOOKUP }) });
      reply.code(201).header('location', `/v1/holds/${placed.hold.hold_id}`);
      return { ...placed.hold, copied: placed.copied, expired_months: placed.expiredMonths };
    },
  );

  app.get<{ Querystring: { state?: 'active' | 'released' | 'purged' } }>(
    '/holds',
    {
      preParsing: requireRole('legal'),
      schema: {
        summary: 'Every legal hold (no identifiers)',
        tags: ['legal holds'],
        querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: ['active', 'released', 'purged'] } } },
      },
    },
    async (req) => {
      const all = await holds.list();
      const list = req.query.state ? all.filter((h) => h.state === req.query.state) : all;
      audited(req, { action: 'hold.list', rows: list.length });
      return { holds: list };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/holds/:id',
    { preParsing: requireRole('legal'), schema: { summary: 'One legal hold', tags: ['legal holds'], params: HOLD_ID, response: { 404: errorSchema } } },
    async (req) => {
      const hold = await holds.get(req.params.id);
      if (!hold) throw new PipelineError('not_found', unknownId('legal hold', req.params.id));
      audited(req, { action: 'hold.read', ...about(hold) });
      return hold;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/holds/:id',
    {
      preParsing: requireRole('legal'),
      schema: {
        summary: 'Release a legal hold: its copy and key go in the next retention pass (releasing twice is harmless)',
        tags: ['legal holds'],
        params: HOLD_ID,
        response: { 404: errorSchema },
      },
    },
    async (req) => {
      const hold = await holds.release(req.params.id, req.principal?.name ?? 'api').catch((err: unknown) => {
        if (err instanceof PipelineError && err.code === 'not_found') throw new PipelineError('not_found', unknownId('legal hold', req.params.id));
        throw err;
      });
      audited(req, { action: 'hold.release', ...about(hold) });
      return hold;
    },
  );
};
