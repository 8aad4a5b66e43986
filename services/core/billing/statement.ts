import { canonicalJson, sha256Hex } from '../disclosure/canonical.ts';
import { PipelineError } from '../errors/pipelineError.ts';

/**
 * A monthly statement of one account: per currency what was used and what it costs, the adjustments it carries
 * for earlier (closed) months, and a digest over its canonical JSON (RFC 8785) so a closed statement can be shown
 * unchanged years later. Money is integer micro-units per currency; currencies are never added together.
 */
export interface StatementLine {
  readonly currency: string;
  readonly records: number;
  readonly segments: number;
  readonly duration_ms: number;
  readonly billable_seconds: number;
  readonly amount_micros: number;
  readonly cost_micros: number;
}

export interface StatementAdjustment {
  readonly adjustment_id: string;
  /** The closed month whose figures changed after it was closed. */
  readonly concerns_month: string;
  readonly currency: string;
  readonly records: number;
  readonly segments: number;
  readonly amount_micros: number;
  readonly cost_micros: number;
  /** `late_records`, `rerate`, or both joined by `+`. */
  readonly reason: string;
  /** False while the month carrying it is open (it is recomputed until that month closes). */
  readonly final: boolean;
}

export interface StatementTotal {
  readonly currency: string;
  readonly amount_micros: number;
  readonly adjustment_micros: number;
  readonly total_micros: number;
}

export interface Statement {
  readonly account_id: string;
  readonly month: string;
  readonly status: 'open' | 'closed';
  readonly closed_at: string | null;
  readonly closed_by: string | null;
  readonly lines: readonly StatementLine[];
  readonly unrated_records: number;
  readonly adjustments: readonly StatementAdjustment[];
  readonly totals: readonly StatementTotal[];
  /**
   * Present (false) only when a figure is past ±(2^53 − 1) micro-units: it is then the nearest number to the exact sum
   * (a few micro-units off at most below 2^63), not the sum itself. A statement is never refused for it: a close must
   * not stop for one account. Covered by the digest.
   */
  readonly exact?: false;
  readonly digest: string;
}

export type StatementBody = Omit<Statement, 'digest' | 'totals' | 'exact'>;

export function totalsOf(lines: readonly StatementLine[], adjustments: readonly StatementAdjustment[]): StatementTotal[] {
  const byCurrency = new Map<string, { amount: number; adj: number }>();
  for (const l of lines) {
    const t = byCurrency.get(l.currency) ?? { amount: 0, adj: 0 };
    t.amount += l.amount_micros;
    byCurrency.set(l.currency, t);
  }
  for (const a of adjustments) {
    // Late unrated records (currency "", no amount) are listed, not priced: they add no total.
    if (a.currency === '') continue;
    const t = byCurrency.get(a.currency) ?? { amount: 0, adj: 0 };
    t.adj += a.amount_micros;
    byCurrency.set(a.currency, t);
  }
  return [...byCurrency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, t]) => ({
      currency,
      amount_micros: t.amount,
      adjustment_micros: t.adj,
      total_micros: t.amount + t.adj,
    }));
}

/** The statement with its totals and digest (SHA-256 of the canonical JSON of everything but the digest). */
export function sealStatement(body: StatementBody): Statement {
  const totals = totalsOf(body.lines, body.adjustments);
  const figures = [...body.lines, ...body.adjustments, ...totals].flatMap((f) =>
    'total_micros' in f ? [f.amount_micros, f.adjustment_micros, f.total_micros] : [f.amount_micros, f.cost_micros],
  );
  const exact = figures.every((v) => Number.isSafeInteger(v));
  const withTotals = { ...body, totals, ...(exact ? {} : { exact: false as const }) };
  return { ...withTotals, digest: statementDigest(withTotals) };
}

export function statementDigest(s: Omit<Statement, 'digest'> | Statement): string {
  const { digest: _digest, ...rest } = s as Statement;
  return sha256Hex(canonicalJson(rest));
}

/**
 * A statement as readers get it (API and CLI alike): each line with `minutes` (billable seconds ÷ 60, two decimals).
 * Derived for reading, so not covered by `digest` — a verifier drops it with `digest` and `digest_verified` (found from
 * outside: the API added it after sealing, undocumented, and the CLI reading the store itself did not add it).
 */
export function statementForReaders<S extends Statement>(s: S): Omit<S, 'lines'> & { lines: (StatementLine & { minutes: number })[] } {
  return { ...s, lines: s.lines.map((l) => ({ ...l, minutes: Math.round((l.billable_seconds / 60) * 100) / 100 })) };
}

/** YYYY-MM of an instant, in UTC. */
export function monthOf(t: number): string {
  return new Date(t).toISOString().slice(0, 7);
}

/** The month after `month` (YYYY-MM). */
export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${String(y + 1).padStart(4, '0')}-01` : `${String(y).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}`;
}

export function monthStart(month: string): number {
  return Date.parse(`${month}-01T00:00:00Z`);
}

/**
 * A month the store can hold (YYYY-MM, 1970-01 to 2299-12): ClickHouse's DateTime64 ends in 2299, and a month outside
 * the range is refused as a bad request rather than reaching the engine as an impossible time.
 */
export const MONTH = /^(?:19[7-9]\d|2[0-2]\d\d)-(?:0[1-9]|1[0-2])$/;
export const MONTH_RULE = 'YYYY-MM, from 1970-01 to 2299-12';

/**
 * `month` when it is one (MONTH); else a PipelineError with `code` (a caller's `bad_request`, a command's
 * `config_invalid`) naming `what` and the rule. Quotes at most 20 characters of what it was given.
 */
export function requireMonth(month: string, code: 'bad_request' | 'config_invalid', what = 'month'): string {
  if (!MONTH.test(month)) throw new PipelineError(code, `${what}: "${month.slice(0, 20)}" is not ${MONTH_RULE}`);
  return month;
}
