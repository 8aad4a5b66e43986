import type { FastifyPluginAsync } from 'fastify';
import { PipelineError } from '../../core/index.ts';
import { requireRole } from '../auth.ts';
import { ANSWER_TYPES, serveDisclosure, type DisclosureServices } from '../disclosure/serveAnswer.ts';
import { audited, errorSchema, unknownId, freeText, identifierSchema, isoString, rangeOf, subjectOf, type IdentifierBody } from './common.ts';

/**
 * Law-enforcement requests (role `lea-officer`), after ETSI TS 102 657: who asks (authority), under which legal basis
 * and case, about which identifier and range. The answer restores both parties of every record, says per month
 * whether it was answered, had no traffic, expired (key destroyed) or was answered from a legal hold's copy, and is
 * signed. `GET /v1/lea/requests/{id}` shows a past request and its signed receipt, never its records again.
 */
interface LeaRequestBody {
  authority: string;
  case_reference: string;
  legal_basis: string;
  identifier: IdentifierBody;
  from: string;
  to: string;
  confidential?: boolean;
}

export const leaRoutes: FastifyPluginAsync<DisclosureServices> = async (app, svc) => {
  app.post<{ Body: LeaRequestBody }>(
    '/lea/requests',
    {
      config: { produces: ANSWER_TYPES, acceptCheckedByHandler: true },
      preParsing: requireRole('lea-officer'),
      schema: {
        summary: 'A retained-data request: the records of one identifier in a range, identifiers restored, signed',
        tags: ['law enforcement'],
        body: {
          type: 'object',
          // Fields it does not read are welcome and ignored; a misspelt one is refused (services/api/bodyFields.ts).
          additionalProperties: true,
          required: ['authority', 'case_reference', 'legal_basis', 'identifier', 'from', 'to'],
          properties: {
            authority: freeText(256, 'the requesting authority'),
            case_reference: freeText(256, 'warrant or case reference'),
            legal_basis: freeText(512, 'the legal basis of the request'),
            identifier: identifierSchema,
            from: isoString,
            to: isoString,
            confidential: { type: 'boolean', description: 'the data subject must not learn of this request (a data-subject export lists it as withheld)' },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 406: errorSchema, 422: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const subject = subjectOf(b.identifier);
      const { from, to } = rangeOf(b.from, b.to, { windowBound: true });
      return serveDisclosure(svc, req, reply, {
        kind: 'lea',
        action: 'lea.request',
        subject,
        from,
        to,
        authority: b.authority.trim(),
        caseReference: b.case_reference.trim(),
        legalBasis: b.legal_basis.trim(),
        confidential: b.confidential ?? false,
        allowHeld: true,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/lea/requests/:id',
    {
      preParsing: requireRole('lea-officer'),
      schema: {
        summary: 'A past request and its result summary (the signed receipt while the month key of the request lives); never its records',
        tags: ['law enforcement'],
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['id'] },
        response: { 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => {
      const receipt = await svc.desk.receipt(req.params.id, 'lea');
      if (!receipt) throw new PipelineError('not_found', unknownId('law-enforcement request', req.params.id));
      audited(req, {
        action: 'lea.receipt',
        requestId: receipt.request_id,
        authority: receipt.authority,
        caseReference: receipt.case_reference,
        legalBasis: receipt.legal_basis,
      });
      return receipt;
    },
  );

  app.get(
    '/lea/signing-key',
    {
      preParsing: requireRole('lea-officer', 'auditor'),
      schema: { summary: 'The public key that signs law-enforcement answers, data-subject exports and audit checkpoints', tags: ['law enforcement'] },
    },
    async () => ({
      key_id: svc.signer.keyId,
      algorithm: 'Ed25519',
      public_key_pem: svc.signer.publicKeyPem,
      public_key: svc.signer.publicKey,
    }),
  );
};
