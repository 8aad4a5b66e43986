import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import {
  impossibleIdProblem,
  MONTH,
  statementForReaders,
  monthKeyOf,
  monthStartOf,
  PipelineError,
  preferredOf,
  quotedValue,
  type PlanBook,
} from '../../core/index.ts';
import type { BillingStore, CloseResult, UsageDimension, UsageRow } from '../../billing/billingStore.ts';
import type { AuditInput } from '../../platform/audit/index.ts';
import { requireRole } from '../auth.ts';
import { audited, errorSchema, instantOf, isoString } from './common.ts';

/**
 * Billing queries (role `billing`): usage aggregates and monthly statements. Figures come from the rated records
 * (services/billing/billingStore.ts); no identifier is involved anywhere on this path.
 */
const DIMENSIONS: readonly UsageDimension[] = ['day', 'month', 'channel', 'country', 'provider', 'status'];
const MAX_RANGE_MS = 400 * 86_400_000;
/** What usage answers in: JSON first (the default), or CSV. */
const USAGE_TYPES: readonly string[] = ['application/json', 'text/csv'];
const CSV_COLUMNS = [
  'account_id',
  'day',
  'month',
  'channel',
  'destination_country',
  'provider_id',
  'status',
  'records',
  'segments',
  'duration_ms',
  'currency',
  'amount_micros',
  'cost_micros',
  'adjustment_micros',
] as const;

interface UsageQuerystring {
  account_id?: string;
  from?: string;
  to?: string;
  group_by?: string;
  format?: 'json' | 'csv';
}

/** A CSV cell: quoted when needed, and a leading = + - @ neutralised so a spreadsheet never runs it as a formula. */
function csvCell(v: string | number | undefined): string {
  const text = v === undefined ? '' : String(v);
  const safe = typeof v === 'string' && /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function usageCsv(rows: readonly UsageRow[], groupBy: readonly UsageDimension[]): string {
  const wanted = new Set(['account_id', 'records', 'segments', 'duration_ms', 'currency', 'amount_micros', 'cost_micros', 'adjustment_micros']);
  if (groupBy.includes('day')) wanted.add('day');
  if (groupBy.includes('month')) wanted.add('month');
  if (groupBy.includes('channel')) wanted.add('channel');
  if (groupBy.includes('country')) wanted.add('destination_country');
  if (groupBy.includes('provider')) wanted.add('provider_id');
  if (groupBy.includes('status')) wanted.add('status');
  const columns = CSV_COLUMNS.filter((c) => wanted.has(c));
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function groupByOf(text: string | undefined): UsageDimension[] {
  // `none`: one row per account and currency over the whole range (what `group_by=,` gave by accident before).
  if (text?.trim() === 'none') return [];
  const parts = (text ?? 'day')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0)
    throw new PipelineError('bad_request', `group_by: no dimension given; use ${DIMENSIONS.join(', ')}, or none for totals over the range`);
  const bad = parts.filter((p) => !(DIMENSIONS as readonly string[]).includes(p));
  if (bad.length > 0)
    throw new PipelineError('bad_request', `group_by: unknown dimension ${bad.map((b) => quotedValue(b)).join(', ')}; use ${DIMENSIONS.join(', ')}`);
  const dims = [...new Set(parts)] as UsageDimension[];
  if (dims.includes('day') && dims.includes('month')) throw new PipelineError('bad_request', 'group_by: day or month, not both');
  return dims;
}

function refuseImpossibleId(field: string, kind: 'account' | 'provider', value: string, from: 'query' | 'path' | 'body'): void {
  const problem = impossibleIdProblem(field, kind, value, from);
  if (problem !== undefined) throw new PipelineError('bad_request', problem);
}

/** Where a close says, before it changes anything, that it started (the route's own entry is written after it ends). */
interface CloseAuditSink {
  append(entry: AuditInput): Promise<unknown>;
}

export const billingRoutes: FastifyPluginAsync<{ billing: BillingStore; plans: () => PlanBook; audit: CloseAuditSink }> = async (
  app,
  { billing, plans, audit },
) => {
  const store = (): BillingStore => billing;

  app.get<{ Querystring: UsageQuerystring }>(
    '/billing/usage',
    {
      config: { produces: USAGE_TYPES },
      preParsing: requireRole('billing'),
      schema: {
        summary: 'Usage aggregates per account and currency, by day or month, channel, destination country, provider (JSON or CSV)',
        tags: ['billing'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            account_id: { type: 'string', minLength: 1, maxLength: 128 },
            from: isoString,
            to: isoString,
            group_by: {
              type: 'string',
              maxLength: 64,
              description: 'comma-separated: day|month, channel, country, provider, status (default day); none: totals over the range',
            },
            format: { type: 'string', enum: ['json', 'csv'] },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 406: errorSchema, 422: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const q = req.query;
      // Defaults: the month to date (UTC), as a bill reads.
      const to = q.to !== undefined ? instantOf('to', q.to) : Date.now();
      const from = q.from !== undefined ? instantOf('from', q.from) : monthStartOf(monthKeyOf(to - 1));
      if (!(to > from))
        throw new PipelineError('bad_request', `range: "to" (${new Date(to).toISOString()}) must be after "from" (${new Date(from).toISOString()})`);
      if (to - from > MAX_RANGE_MS) throw new PipelineError('bad_request', 'range: at most 400 days per query');
      const groupBy = groupByOf(q.group_by);
      // `format` decides; else the Accept header, by its q-values (the same reading as the 406 check).
      const csv = q.format === 'csv' || (q.format === undefined && preferredOf(req.headers.accept, USAGE_TYPES) === 'text/csv');
      if (q.account_id !== undefined) refuseImpossibleId('account_id', 'account', q.account_id, 'query');
      const rows = await store().usage({ ...(q.account_id !== undefined ? { accountId: q.account_id } : {}), from, to, groupBy });
      audited(req, { action: 'billing.usage', rows: rows.length });
      if (csv) {
        reply.header('content-type', 'text/csv; charset=utf-8');
        return usageCsv(rows, groupBy);
      }
      return { rows };
    },
  );

  app.get<{ Params: { account: string; month: string } }>(
    '/billing/statements/:account/:month',
    {
      preParsing: requireRole('billing'),
      schema: {
        summary: "An account's monthly statement: per currency records, segments, minutes, amount and cost, adjustments for closed months, digest",
        tags: ['billing'],
        params: {
          type: 'object',
          required: ['account', 'month'],
          properties: { account: { type: 'string', minLength: 1, maxLength: 128 }, month: { type: 'string', pattern: MONTH.source } },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => {
      refuseImpossibleId('account', 'account', req.params.account, 'path');
      const s = await store().statement(req.params.account, req.params.month);
      if (!s) throw new PipelineError('not_found', `no statement for account ${req.params.account} in ${req.params.month}`);
      audited(req, { action: 'billing.statement', rows: s.lines.length });
      return statementForReaders(s);
    },
  );

  const actorOf = (req: { principal?: { name: string } | undefined }): string => `api:${req.principal?.name ?? 'unknown'}`;

  app.post<{ Body: { month?: string; through?: string } }>(
    '/billing/close',
    {
      preParsing: requireRole('billing'),
      schema: {
        summary:
          "Close a month (`month`): freeze every account's statement with its digest; later changes become adjustments of the next open month. `through` instead: close every month up to it that holds billed records, in order, then it",
        tags: ['billing'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { month: { type: 'string', pattern: MONTH.source }, through: { type: 'string', pattern: MONTH.source } },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema },
      },
    },
    async (req) => {
      const { month, through } = req.body;
      if ((month === undefined) === (through === undefined))
        throw new PipelineError('bad_request', 'body: give exactly one of "month" (close that month) or "through" (close every month up to it, in order)');
      // In the trail before any statement is frozen: a process killed part-way leaves this entry (the route's own,
      // with what closed, is written when the response goes out; found from outside: a killed close left none).
      const requestId = randomUUID();
      await audit.append({
        requestId,
        actor: req.principal?.name ?? 'anonymous',
        roles: req.principal?.roles ?? [],
        action: 'billing.close',
        method: req.method,
        route: req.routeOptions.url ?? '/v1/billing/close',
        outcome: 'started',
        detail: month !== undefined ? `month ${month}` : `through ${through!}`,
        clientIp: req.ip,
      });
      if (through !== undefined) {
        // Audited after each month, so a failure part-way (409, 5xx) still leaves an entry naming what did close.
        const done: CloseResult[] = [];
        const note = (): void =>
          audited(req, {
            action: 'billing.close',
            requestId,
            rows: done.reduce((n, r) => n + r.accounts, 0),
            detail: done.length
              ? `through ${through}: closed ${done.map((r) => r.month).join(', ')}; ${done.reduce((n, r) => n + r.adjustments, 0)} adjustments`
              : `through ${through}: nothing closed`,
          });
        note();
        await store().closeThrough(through, actorOf(req), (r) => {
          done.push(r);
          note();
        });
        return { through, closed: done.map((r) => ({ month: r.month, accounts: r.accounts, adjustments: r.adjustments, digest: r.digest })) };
      }
      const result = await store().close(month!, actorOf(req));
      audited(req, { action: 'billing.close', requestId, rows: result.accounts });
      return { month: result.month, accounts: result.accounts, adjustments: result.adjustments, digest: result.digest };
    },
  );

  app.post<{ Body: { from: string; to: string; account_id?: string; plan_id?: string } }>(
    '/billing/rerate',
    {
      preParsing: requireRole('billing'),
      schema: {
        summary: 'Rate a period again with the current tariff plans; the replaced figures and the run are kept',
        tags: ['billing'],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['from', 'to'],
          properties: {
            from: isoString,
            to: isoString,
            account_id: { type: 'string', minLength: 1, maxLength: 128 },
            plan_id: { type: 'string', minLength: 1, maxLength: 64 },
          },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema },
      },
    },
    async (req) => {
      const from = instantOf('from', req.body.from);
      const to = instantOf('to', req.body.to);
      if (!(to > from)) throw new PipelineError('bad_request', 'range: "to" must be after "from"');
      if (req.body.account_id !== undefined) refuseImpossibleId('account_id', 'account', req.body.account_id, 'body');
      const report = await store().rerate({
        from,
        to,
        book: plans(),
        actor: actorOf(req),
        ...(req.body.account_id ? { accountId: req.body.account_id } : {}),
        ...(req.body.plan_id ? { planId: req.body.plan_id } : {}),
      });
      audited(req, { action: 'billing.rerate', rows: report.changed, requestId: report.rerate_id });
      return report;
    },
  );

  app.get<{ Params: { provider: string; month: string } }>(
    '/billing/providers/:provider/costs/:month',
    {
      preParsing: requireRole('billing'),
      schema: {
        summary: "Our cost of one provider's traffic in a month per day, destination country and currency (what reconciliation compares)",
        tags: ['billing'],
        params: {
          type: 'object',
          required: ['provider', 'month'],
          properties: { provider: { type: 'string', minLength: 1, maxLength: 128 }, month: { type: 'string', pattern: MONTH.source } },
        },
        response: { 400: errorSchema, 401: errorSchema, 403: errorSchema, 422: errorSchema },
      },
    },
    async (req) => {
      // As for an account id (found from outside: an identifier-shaped one answered 200 with no cells).
      refuseImpossibleId('provider', 'provider', req.params.provider, 'path');
      const cells = await store().providerCost(req.params.provider, req.params.month);
      audited(req, { action: 'billing.provider_costs', rows: cells.length });
      return { cells };
    },
  );
};

export const MAX_USAGE_RANGE_MS = MAX_RANGE_MS;
