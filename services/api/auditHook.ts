import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditTrail } from '../platform/audit/index.ts';

/**
 * The `/v1` scope's `onSend` hook: every request there — answered, refused (401, 403, 400, 429) or failed — leaves one
 * audit entry before its response goes out. Fail closed: if the entry cannot be written, the response is replaced
 * by a 503 and nothing it carried is sent. Streamed answers write their own entries (before the first record and
 * when the stream ends) and are skipped here.
 */
const ACTIONS: Record<string, string> = {
  'POST /v1/lea/requests': 'lea.request',
  'GET /v1/lea/requests/:id': 'lea.receipt',
  'GET /v1/lea/signing-key': 'lea.signing_key',
  'POST /v1/holds': 'hold.place',
  'GET /v1/holds': 'hold.list',
  'GET /v1/holds/:id': 'hold.read',
  'DELETE /v1/holds/:id': 'hold.release',
  'POST /v1/dsar': 'dsar.export',
  'GET /v1/dsar/:id': 'dsar.receipt',
  'GET /v1/audit': 'audit.read',
  'GET /v1/audit/verify': 'audit.verify',
  'POST /v1/admin/retention/run': 'retention.run',
  // Refused before their handler names them (401, 403, 400, 429): the same names their answers are audited under.
  'GET /v1/billing/usage': 'billing.usage',
  'GET /v1/billing/statements/:account/:month': 'billing.statement',
  'POST /v1/billing/close': 'billing.close',
  'POST /v1/billing/rerate': 'billing.rerate',
  'GET /v1/billing/providers/:provider/costs/:month': 'billing.provider_costs',
  'GET /v1/fraud/alerts': 'fraud.alerts',
  'GET /v1/retention/reports/:month': 'retention.report',
};

export function outcomeOf(status: number): string {
  if (status < 400) return 'ok';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'rate_limited';
  if (status < 500) return 'rejected';
  return 'failed';
}

export function auditHook(audit: AuditTrail, log: Logger) {
  return async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const d = req.auditDetail;
    if (d?.self) return payload;
    // A route's template, never the path as sent (it may carry an identifier a caller put there).
    const route = req.routeOptions.url ?? req.knownRoute ?? 'unmatched';
    const status = reply.statusCode;
    try {
      await audit.append({
        actor: req.principal?.name ?? 'anonymous',
        roles: req.principal?.roles ?? [],
        action: d?.action ?? ACTIONS[`${req.method} ${route}`] ?? 'api.request',
        method: req.method,
        route,
        status,
        outcome: outcomeOf(status),
        ...(d?.authority !== undefined ? { authority: d.authority } : {}),
        ...(d?.caseReference !== undefined ? { caseReference: d.caseReference } : {}),
        ...(d?.legalBasis !== undefined ? { legalBasis: d.legalBasis } : {}),
        ...(d?.requestId !== undefined ? { requestId: d.requestId } : {}),
        ...(d?.subject !== undefined ? { subject: d.subject } : {}),
        ...(d?.rows !== undefined ? { rows: d.rows } : {}),
        ...(d?.confidential !== undefined ? { confidential: d.confidential } : {}),
        ...(d?.detail !== undefined ? { detail: d.detail } : {}),
        clientIp: req.ip,
      });
      return payload;
    } catch (err) {
      log.error({ err, route }, 'the audit trail cannot be written: response withheld');
      reply.code(503).header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify({ error: 'unavailable', message: 'the audit trail cannot be written; the response was withheld' });
    }
  };
}
