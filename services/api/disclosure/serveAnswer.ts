import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PipelineError, SALT_MEMBER, answerFormatOf, answerSalt, CONTENT_TYPES, type NormalisedIdentifier } from '../../core/index.ts';
import type { AuditTrail, DisclosedParty } from '../../platform/audit/index.ts';
import type { LoadedSigner } from '../../platform/signing/index.ts';
import { audited, FLAGGED_LOOKUP } from '../routes/common.ts';
import { answerStream } from './answerStream.ts';
import { DisclosureDesk, newRequestId, type DisclosureKind } from './disclosureDesk.ts';

/** The media types a disclosure answers in (the route's `config.produces`; answerFormatOf picks one). */
export const ANSWER_TYPES: readonly string[] = ['application/json', 'application/x-ndjson', 'application/ndjson', 'text/csv'];

/**
 * Serves one disclosure (a law-enforcement answer or a data-subject export) the same way: plan it, refuse it while
 * nothing has left (too many records, an Accept we cannot write), write the audit entry and the request row *before*
 * the first record leaves, stream the signed answer, then record how it ended.
 */
export interface DisclosureServices {
  readonly desk: DisclosureDesk;
  readonly audit: AuditTrail;
  readonly signer: LoadedSigner;
  readonly maxAnswerRows: number;
  readonly clock: () => number;
  readonly log: Logger;
}

export interface DisclosureAsk {
  readonly kind: DisclosureKind;
  readonly action: string;
  readonly subject: NormalisedIdentifier;
  readonly from: number;
  readonly to: number;
  readonly authority: string;
  readonly caseReference: string;
  readonly legalBasis: string;
  readonly confidential: boolean;
  /**
   * Months past the identifier window are answered from active legal holds' copies: every hold's (law enforcement), or
   * those of holds not flagged confidential (a data-subject export: a confidential hold is counted in `withheld`).
   */
  readonly allowHeld: boolean | 'not-confidential';
  /** Members of the answer after the request's own (data-subject exports: disclosures, holds). */
  readonly extraHeader?: (requestId: string) => Promise<Record<string, unknown>>;
}

export async function serveDisclosure(svc: DisclosureServices, req: FastifyRequest, reply: FastifyReply, ask: DisclosureAsk): Promise<FastifyReply> {
  // A request refused before its answer begins (406, 422, a store error) is audited by the /v1 hook: with its case and
  // subject, as an answered one is (found from outside: a 422 that told the caller how many records the subject has left
  // an entry with no case and no subject).
  audited(req, {
    action: ask.action,
    subject: ask.subject,
    authority: ask.authority,
    caseReference: ask.caseReference,
    legalBasis: ask.legalBasis,
    confidential: ask.confidential,
  });
  // A lookup in the form ingest keeps what it cannot read (identifier.as_sent, or a `+digits` number the metadata does
  // not know): the trail says so, as the answer does.
  const flaggedNote = ask.subject.valid ? '' : `; ${FLAGGED_LOOKUP}`;
  const format = answerFormatOf(req.headers.accept);
  if (!format) {
    audited(req, { detail: 'refused: no form of the answer the Accept header admits' });
    throw new PipelineError('not_acceptable', `Accept: this route answers ${ANSWER_TYPES.join(', ')}`);
  }
  const now = svc.clock();
  const plan = await svc.desk.plan(ask.subject, ask.from, ask.to, now, ask.allowHeld);
  if (plan.estimate > svc.maxAnswerRows) {
    audited(req, { detail: `refused: about ${plan.estimate} records planned, over the ${svc.maxAnswerRows} of one answer${flaggedNote}` });
    throw new PipelineError(
      'answer_too_large',
      `the answer would hold about ${plan.estimate} records, more than this API gives in one answer (${svc.maxAnswerRows}, CDR_API_MAX_ANSWER_ROWS); ask for a shorter range`,
    );
  }
  // A law-enforcement answer puts each party it gives out on record under this month's key before their records leave
  // (recordParties). Without that key (destroyed by a retention pass whose clock was moved past this month) it would
  // fail at its first page with someone in it, after the 201 (found from outside): said now, before anything starts.
  if (ask.kind === 'lea' && !(await svc.audit.canRecordParties(now))) {
    audited(req, { detail: "refused: this month's key, which the parties an answer discloses are recorded under, was destroyed" });
    throw new PipelineError(
      'key_unavailable',
      `this month's identifier key (${new Date(now).toISOString().slice(0, 7)}) was destroyed, by a retention pass whose clock was moved past it: the parties an answer discloses cannot be put on record, so no answer is given this month (a drill with a moved clock belongs on a copy of the store)`,
    );
  }
  const requestId = newRequestId(ask.kind);
  const actor = req.principal?.name ?? 'anonymous';
  const meta = {
    kind: ask.kind,
    requestId,
    requestedAt: now,
    requestedBy: actor,
    authority: ask.authority,
    caseReference: ask.caseReference,
    legalBasis: ask.legalBasis,
    confidential: ask.confidential,
    identifier: ask.subject,
    from: ask.from,
    to: ask.to,
    format,
  };
  // A law-enforcement request creates a resource (its receipt, at Location): 201. A data-subject export has none: 200.
  const status = ask.kind === 'lea' ? 201 : 200;
  const auditBase = {
    actor,
    roles: req.principal?.roles ?? [],
    action: ask.action,
    method: req.method,
    route: req.routeOptions.url ?? req.url,
    authority: ask.authority,
    caseReference: ask.caseReference,
    legalBasis: ask.legalBasis,
    requestId,
    subject: ask.subject,
    confidential: ask.confidential,
    clientIp: req.ip,
  };
  // Write-ahead: the disclosure is on record before any identifier leaves. If this fails, nothing is sent. The audit
  // entry and the request row are written side by side (one round trip under load instead of two); a request row
  // without its audit entry is closed as failed, so no receipt says "started" for an answer that never began.
  const [startEntry, startRow] = await Promise.allSettled([
    svc.audit.append({ ...auditBase, status, outcome: 'started', rows: 0, detail: `about ${plan.estimate} records planned${flaggedNote}` }),
    svc.desk.begin(meta),
  ]);
  if (startEntry.status === 'rejected' || startRow.status === 'rejected') {
    if (startRow.status === 'fulfilled') {
      await svc.desk
        .finish(meta, { status: 'failed', recordCount: 0, months: [], integrity: null }, svc.clock())
        .catch((err: unknown) => svc.log.error({ err, request_id: requestId }, 'could not record that a disclosure failed to start'));
    }
    throw startEntry.status === 'rejected' ? startEntry.reason : (startRow as PromiseRejectedResult).reason;
  }
  const header: Record<string, unknown> = {
    request_id: requestId,
    ...(ask.kind === 'lea' ? { authority: ask.authority, case_reference: ask.caseReference, legal_basis: ask.legalBasis } : {}),
    // `flagged`: looked up in the form ingest keeps what it cannot read (see subjectOf).
    identifier: { type: ask.subject.type, value: ask.subject.value, flagged: !ask.subject.valid },
    from: new Date(ask.from).toISOString(),
    to: new Date(ask.to).toISOString(),
    answered_at: new Date(now).toISOString(),
    confidential: ask.confidential,
    ...(ask.extraHeader ? await ask.extraHeader(requestId) : {}),
    // The identifier's digest is taken behind it: in the answer, never in its receipt (answerIntegrity.ts).
    [SALT_MEMBER]: answerSalt(),
  };
  const stream = answerStream({
    format,
    header,
    plan,
    desk: svc.desk,
    signer: svc.signer,
    clock: svc.clock,
    ...(ask.kind === 'lea'
      ? {
          recordParties: {
            subject: ask.subject,
            record: (parties: DisclosedParty[]) => svc.audit.recordParties(requestId, parties, svc.clock()),
            onLateFailure: (err: unknown) =>
              svc.log.error({ err, request_id: requestId }, 'could not record how many records of its parties a disclosure gave out after their first page'),
          },
        }
      : {}),
    onEnd: async (outcome) => {
      if (outcome.status === 'failed')
        svc.log.error(
          { err: outcome.error, request_id: requestId, records_sent: outcome.recordCount },
          'a disclosure failed part-way: its answer was cut off (the receipt and the audit trail say failed)',
        );
      // Recorded after the answer's last byte rather than before it: the reader is not kept waiting on two inserts
      // (under ingest these were 0.1-0.2 s of a whole-window request). The audit entry is queued now, so an audit read
      // that follows in this process finds it (AuditTrail.settled); the receipt waits for its row (DisclosureDesk).
      const ended = svc.clock();
      const entry = svc.audit.append({
        ...auditBase,
        status,
        outcome: outcome.status,
        rows: outcome.recordCount,
        ...(ask.subject.valid ? {} : { detail: FLAGGED_LOOKUP }),
      });
      svc.desk.recordEnd(requestId, async () => {
        const [row, audit] = await Promise.allSettled([svc.desk.finish(meta, outcome, ended, DisclosureDesk.holdsOf(plan)), entry]);
        for (const r of [row, audit]) {
          if (r.status === 'rejected') svc.log.error({ err: r.reason as unknown, request_id: requestId }, 'could not record how a disclosure ended');
        }
      });
    },
  });
  const receiptUrl = ask.kind === 'lea' ? `/v1/lea/requests/${requestId}` : undefined;
  reply
    .code(status)
    .header('content-type', CONTENT_TYPES[format])
    .header('x-request-id', requestId)
    .header('x-expired-months', DisclosureDesk.expiredMonths(plan).join(','))
    // Also for NDJSON and CSV, which carry no header members: the match was by spelling (the signed header says it too).
    .header('x-identifier-flagged', String(!ask.subject.valid))
    .header('cache-control', 'no-store');
  if (receiptUrl) reply.header('location', receiptUrl);
  // From here the stream's end writes the closing entry; the audit hook writes none for this request.
  audited(req, { self: true });
  return reply.send(stream);
}
