import type { FastifyPluginAsync } from 'fastify';
import { monthsInRange, PipelineError, type AuditEntry, type NormalisedIdentifier } from '../../core/index.ts';
import type { LegalHolds } from '../../platform/holds/index.ts';
import { requireRole } from '../auth.ts';
import { identifierWindowStart } from '../disclosure/disclosureDesk.ts';
import { ANSWER_TYPES, serveDisclosure, type DisclosureServices } from '../disclosure/serveAnswer.ts';
import { audited, errorSchema, unknownId, identifierSchema, isoString, rangeOf, subjectOf, type IdentifierBody } from './common.ts';

/**
 * Data-subject access (role `dpo`; privacy notice section 9): everything held about one identifier in the identifier
 * window, in both directions, and what was disclosed about it — which authority, when, under which case and legal
 * basis. A request or hold flagged confidential (the law forbids tipping off) is not described: it is counted as
 * withheld. The export is signed like a law-enforcement answer.
 */
interface DsarBody {
  identifier: IdentifierBody;
  from?: string;
  to?: string;
}

export interface DsarOptions extends DisclosureServices {
  readonly holds: LegalHolds;
}

interface Disclosure {
  request_id: string;
  authority: string;
  case_reference: string;
  legal_basis: string;
  at: string;
  records: number;
  outcome: string;
  /**
   * `subject`: the request was about this identifier; `party`: about someone else, and its answer gave out this
   * identifier as the other party of `records` of its records.
   */
  as: 'subject' | 'party';
}

/** The law-enforcement disclosures in the audit trail, one per request (its last entry says how it ended). */
export function disclosuresFrom(entries: readonly AuditEntry[], asParty?: ReadonlyMap<string, number>): { listed: Disclosure[]; withheld: number } {
  const byRequest = new Map<string, { first: AuditEntry; last: AuditEntry }>();
  for (const e of entries) {
    if (e.request_id === '') continue;
    const seen = byRequest.get(e.request_id);
    if (!seen) byRequest.set(e.request_id, { first: e, last: e });
    else seen.last = e;
  }
  const listed: Disclosure[] = [];
  let withheld = 0;
  for (const { first, last } of byRequest.values()) {
    if (first.confidential || last.confidential) {
      withheld++;
      continue;
    }
    listed.push({
      request_id: first.request_id,
      authority: first.authority,
      case_reference: first.case_reference,
      legal_basis: first.legal_basis,
      at: first.at,
      records: asParty ? (asParty.get(first.request_id) ?? 0) : last.rows,
      outcome: last.outcome === 'started' ? 'interrupted' : last.outcome,
      as: asParty ? 'party' : 'subject',
    });
  }
  return { listed, withheld };
}

export const dsarRoutes: FastifyPluginAsync<DsarOptions> = async (app, svc) => {
  async function aboutSubject(subject: NormalisedIdentifier, now: number): Promise<Record<string, unknown>> {
    const months = monthsInRange(identifierWindowStart(now), now + 1);
    const tokens = await svc.audit.subjectTokensOf(subject, months);
    // A month of the window whose key was destroyed early (a drill with a moved clock) cannot be searched: said, so an
    // empty list is not read as "nothing disclosed" (found from outside: `disclosures: []` while requests were on record).
    const searched = new Set(tokens.map((t) => t.month));
    const unsearchable = (await svc.audit.destroyedMonths(months.filter((m) => !searched.has(m)))).sort();
    const aboutIt = await svc.audit.about(tokens, ['lea.request']);
    const asSubject = disclosuresFrom(aboutIt);
    // Requests about someone else whose answers gave this identifier out as the other party (found from outside: an
    // export listed only the requests about the identifier itself). A request about it is listed once, as `subject`.
    const asked = new Set(aboutIt.map((e) => e.request_id));
    const asPartyIn = new Map([...(await svc.audit.requestsDisclosing(tokens))].filter(([id]) => !asked.has(id)));
    const asParty = disclosuresFrom(await svc.audit.ofRequests([...asPartyIn.keys()], ['lea.request']), asPartyIn);
    const disclosures = {
      listed: [...asSubject.listed, ...asParty.listed].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)),
      withheld: asSubject.withheld + asParty.withheld,
    };
    const holds = await svc.holds.about(subject);
    const listedHolds = holds
      .filter((h) => !h.confidential)
      .map((h) => ({
        case_reference: h.case_reference,
        reason: h.reason,
        from: h.from,
        to: h.to,
        state: h.state,
        placed_at: h.placed_at,
        released_at: h.released_at,
      }));
    return {
      disclosures: disclosures.listed,
      holds: listedHolds,
      withheld: { disclosures: disclosures.withheld, holds: holds.length - listedHolds.length },
      // Months of the identifier window in which disclosures could not be searched for (their key is destroyed).
      disclosures_unsearchable_months: unsearchable,
    };
  }

  app.post<{ Body: DsarBody }>(
    '/dsar',
    {
      config: { produces: ANSWER_TYPES, acceptCheckedByHandler: true },
      preParsing: requireRole('dpo'),
      schema: {
        summary: "Data-subject access export: one identifier's records in the identifier window and the disclosures made about it",
        tags: ['data protection'],
        body: {
          type: 'object',
          // Fields it does not read are welcome and ignored; a misspelt one is refused (services/api/bodyFields.ts).
          additionalProperties: true,
          required: ['identifier'],
          properties: { identifier: identifierSchema, from: isoString, to: isoString },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 406: errorSchema, 422: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const now = svc.clock();
      const subject = subjectOf(req.body.identifier);
      // By default up to a week ahead too: ingest stores records up to CDR_MAX_FUTURE_SKEW_MS (at most 7 days) ahead of
      // its clock, and they are the subject's as well (found from outside: one 6 h ahead was left out).
      const { from, to } = rangeOf(
        req.body.from ?? new Date(identifierWindowStart(now)).toISOString(),
        req.body.to ?? new Date(now + 7 * 86_400_000).toISOString(),
        {
          windowBound: true,
        },
      );
      return serveDisclosure(svc, req, reply, {
        kind: 'dsar',
        action: 'dsar.export',
        subject,
        from,
        to,
        authority: 'data subject',
        caseReference: '',
        legalBasis: 'data-subject access (privacy notice section 9)',
        confidential: false,
        allowHeld: 'not-confidential',
        extraHeader: async () => aboutSubject(subject, now),
      });
    },
  );

  // The export's receipt, as a law-enforcement request has one: an NDJSON or CSV export carries records only, and its
  // signed header (the integrity block) is here, so `cdr lea verify FILE --receipt R` can check it offline (found from
  // outside: a streamed export could not be verified at all). Never the records or the identifier.
  app.get<{ Params: { id: string } }>(
    '/dsar/:id',
    {
      preParsing: requireRole('dpo'),
      schema: {
        summary: 'A past data-subject export and its result summary (the signed receipt while the month key of the request lives); never its records',
        tags: ['data protection'],
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['id'] },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 429: errorSchema },
      },
    },
    async (req) => {
      const receipt = await svc.desk.receipt(req.params.id, 'dsar');
      if (!receipt) throw new PipelineError('not_found', unknownId('data-subject export', req.params.id));
      audited(req, { action: 'dsar.receipt', requestId: receipt.request_id });
      return receipt;
    },
  );
};
