import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import {
  impossibleIdProblem,
  requireMonth,
  PipelineError,
  statementForReaders,
  isoInstantProblem,
  parseIsoInstant,
  readInvoiceText,
  reconcile,
  type Difference,
  type InvoiceLine,
  type Statement,
} from '../core/index.ts';
import { BillingStore, type CloseResult, type RerateReport } from '../billing/billingStore.ts';
import { plansFileOf, readPlanFile } from '../billing/planFile.ts';
import { openProcessAudit } from '../platform/audit/index.ts';
import type { PipelineConfig } from '../platform/config/index.ts';
import { createCommandLogger } from '../platform/observability/index.ts';
import { openRuntime, requireStore } from '../platform/runtime/index.ts';
import { requireStoreDir, runningApi } from './runningApi.ts';

/**
 * `cdr billing close | statement | rerate | reconcile`: JSON on stdout. Each opens the store itself, or — when a
 * `cdr start` holds the embedded store — asks its API (role `billing`). A close and a re-rate are written to the
 * audit trail with the OS user.
 */
function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

async function withStore<T>(
  config: PipelineConfig,
  work: (store: BillingStore, audit: Awaited<ReturnType<typeof openProcessAudit>> | undefined) => Promise<T>,
  audited = false,
): Promise<T> {
  // Billing works on what ingest stored: no store here is a wrong data directory, not a new empty store to create.
  if (!config.clickhouse.url) requireStoreDir(config.dataDir, "the pipeline's data directory");
  const rt = await openRuntime(config, { needKafka: false, log: createCommandLogger(config.logLevel) });
  try {
    const audit = audited ? await openProcessAudit(rt, 'cli') : undefined;
    try {
      return await work(new BillingStore(requireStore(rt)), audit);
    } finally {
      await audit?.close();
    }
  } finally {
    await rt.close();
  }
}

const monthArg = (month: string): string => requireMonth(month, 'config_invalid', '--month');

/**
 * An `--account`/`--provider` the API would refuse is refused here too, whether or not a `cdr start` answers (found
 * from outside: `--account ""` re-rated every account, and a phone number was stored as a re-rate's account).
 */
function idArg(flag: string, kind: 'account' | 'provider', value: string): string {
  if (value.trim() === '') throw new PipelineError('config_invalid', `${flag}: empty (leave the option out to mean every ${kind})`);
  const problem = impossibleIdProblem(flag, kind, value, 'option');
  if (problem !== undefined) throw new PipelineError('config_invalid', problem);
  return value;
}

function instantArg(flag: string, text: string): number {
  const at = parseIsoInstant(text);
  if (at === undefined) throw new PipelineError('config_invalid', isoInstantProblem(flag, text));
  return at;
}

const api = (config: PipelineConfig) => (config.clickhouse.url ? undefined : runningApi(config.dataDir, 'billing'));

const closeSummary = (r: CloseResult) => ({ month: r.month, accounts: r.accounts, adjustments: r.adjustments, digest: r.digest });

/** `--month M` closes M; `--through M` closes every month a close of M would not skip, in order, then M (one only). */
export async function billingClose(config: PipelineConfig, args: { month?: string; through?: string }): Promise<unknown> {
  if ((args.month === undefined) === (args.through === undefined))
    throw new PipelineError(
      'config_invalid',
      'billing close: give exactly one of --month YYYY-MM (that month) or --through YYYY-MM (every month up to it, in order)',
    );
  const remote = api(config);
  const audit = async (audit: Awaited<ReturnType<typeof openProcessAudit>> | undefined, result: CloseResult): Promise<void> => {
    await audit?.append({
      actor: actor(),
      action: 'billing.close',
      outcome: 'closed',
      rows: result.accounts,
      detail: `month ${result.month}, ${result.adjustments} adjustments, digest ${result.digest}`,
    });
  };
  // In the trail before any statement is frozen (a close killed part-way leaves this entry), and `failed` when the
  // store refused or failed the close itself (not when only a later audit entry could not be written); `closed` per
  // month otherwise.
  const recorded = async <T>(trail: Awaited<ReturnType<typeof openProcessAudit>> | undefined, what: string, close: () => Promise<T>): Promise<T> => {
    await trail?.append({ actor: actor(), action: 'billing.close', outcome: 'started', detail: what });
    return close();
  };
  const failed = async (trail: Awaited<ReturnType<typeof openProcessAudit>> | undefined, what: string, err: unknown): Promise<never> => {
    // The close's own error is what the caller must see, even when this entry cannot be written.
    await trail
      ?.append({ actor: actor(), action: 'billing.close', outcome: 'failed', detail: `${what}: ${err instanceof Error ? err.message : String(err)}` })
      .catch((e: unknown) =>
        process.stderr.write(`cdr: could not record the failed close in the audit trail: ${e instanceof Error ? e.message : String(e)}\n`),
      );
    throw err;
  };
  if (args.through !== undefined) {
    const through = requireMonth(args.through, 'config_invalid', '--through');
    if (remote) return remote.call('POST', '/v1/billing/close', { through });
    return withStore(
      config,
      (store, trail) =>
        recorded(trail, `through ${through}`, async () => {
          const closed = await store.closeThrough(through, actor(), (r) => audit(trail, r)).catch((err: unknown) => failed(trail, `through ${through}`, err));
          return { through, closed: closed.map(closeSummary) };
        }),
      true,
    );
  }
  const month = monthArg(args.month!);
  if (remote) return remote.call('POST', '/v1/billing/close', { month });
  return withStore(
    config,
    (store, trail) =>
      recorded(trail, `month ${month}`, async () => {
        const result = await store.close(month, actor()).catch((err: unknown) => failed(trail, `month ${month}`, err));
        await audit(trail, result);
        return closeSummary(result);
      }),
    true,
  );
}

export async function billingStatement(config: PipelineConfig, args: { account: string; month: string }): Promise<Statement> {
  const month = monthArg(args.month);
  idArg('--account', 'account', args.account);
  const remote = api(config);
  if (remote) return remote.call<Statement>('GET', `/v1/billing/statements/${encodeURIComponent(args.account)}/${month}`);
  const s = await withStore(config, (store) => store.statement(args.account, month));
  if (!s) throw new PipelineError('not_found', `no statement for account ${args.account} in ${month}`);
  return statementForReaders(s);
}

export async function billingRerate(config: PipelineConfig, args: { from: string; to: string; account?: string; plan?: string }): Promise<RerateReport> {
  const from = instantArg('--from', args.from);
  const to = instantArg('--to', args.to);
  if (!(to > from)) throw new PipelineError('config_invalid', '--to must be after --from');
  if (args.account !== undefined) idArg('--account', 'account', args.account);
  if (args.plan !== undefined && args.plan.trim() === '') throw new PipelineError('config_invalid', '--plan: empty (leave the option out to mean every plan)');
  const remote = api(config);
  if (remote)
    return remote.call<RerateReport>('POST', '/v1/billing/rerate', {
      from: args.from,
      to: args.to,
      ...(args.account !== undefined ? { account_id: args.account } : {}),
      ...(args.plan !== undefined ? { plan_id: args.plan } : {}),
    });
  const file = plansFileOf(config.billing.plansFile);
  const book = readPlanFile(file);
  return withStore(
    config,
    async (store, audit) => {
      await store.recordPlans(book, file);
      const report = await store.rerate({
        from,
        to,
        book,
        actor: actor(),
        ...(args.account !== undefined ? { accountId: args.account } : {}),
        ...(args.plan !== undefined ? { planId: args.plan } : {}),
      });
      await audit?.append({
        actor: actor(),
        action: 'billing.rerate',
        outcome: 'rerated',
        requestId: report.rerate_id,
        rows: report.changed,
        detail: `${report.from}..${report.to} ${report.records} records, ${report.changed} changed`,
      });
      return report;
    },
    true,
  );
}

/** Reads an operator's invoice (core/billing/invoice.ts says what it takes); every bad line is named. */
export function readInvoice(file: string, month: string): InvoiceLine[] {
  const reading = readInvoiceText(readFileSync(file), month);
  if (!reading.ok) throw new PipelineError('config_invalid', `invoice ${file} is invalid:\n  ${reading.problems.join('\n  ')}`);
  return reading.lines;
}

export interface ReconcileReport {
  readonly provider: string;
  readonly month: string;
  readonly invoice: string;
  readonly cells_compared: number;
  readonly differences: readonly Difference[];
  readonly ours_total: readonly { currency: string; cost_micros: number }[];
  readonly invoice_total: readonly { currency: string; cost_micros: number }[];
}

export async function billingReconcile(config: PipelineConfig, args: { provider: string; month: string; invoice: string }): Promise<ReconcileReport> {
  const month = monthArg(args.month);
  idArg('--provider', 'provider', args.provider);
  const invoice = readInvoice(args.invoice, month);
  const remote = api(config);
  const ours = remote
    ? (
        await remote.call<{ cells: Awaited<ReturnType<BillingStore['providerCost']>> }>(
          'GET',
          `/v1/billing/providers/${encodeURIComponent(args.provider)}/costs/${month}`,
        )
      ).cells
    : await withStore(config, (store) => store.providerCost(args.provider, month));
  const differences = reconcile(ours, invoice);
  const total = (cells: readonly { currency: string; cost_micros: number }[]) => {
    const m = new Map<string, number>();
    for (const c of cells) m.set(c.currency, (m.get(c.currency) ?? 0) + c.cost_micros);
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([currency, cost_micros]) => ({ currency, cost_micros }));
  };
  return {
    provider: args.provider,
    month,
    invoice: args.invoice,
    cells_compared: new Set([
      ...ours.map((c) => `${c.day}|${c.destination_country}|${c.currency}`),
      ...invoice.map((c) => `${c.day}|${c.destination_country}|${c.currency}`),
    ]).size,
    differences,
    ours_total: total(ours),
    invoice_total: total(invoice),
  };
}
