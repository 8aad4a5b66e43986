import { addMicros } from './money.ts';
import { PipelineError } from '../errors/pipelineError.ts';

/**
 * Provider reconciliation: our cost of a provider's traffic per day × destination country × currency against the
 * provider's invoice lines for the same cells. Every cell that differs is listed with both sides; nothing is
 * tolerated silently (a tolerance, when given, is explicit and in micro-units).
 */
export interface CostCell {
  readonly day: string;
  readonly destination_country: string;
  readonly currency: string;
  readonly records: number;
  readonly cost_micros: number;
}

export interface Difference {
  readonly day: string;
  readonly destination_country: string;
  readonly currency: string;
  readonly kind: 'missing_in_invoice' | 'missing_in_ours' | 'cost_differs' | 'records_differ';
  readonly ours: { readonly records: number; readonly cost_micros: number } | null;
  readonly invoice: { readonly records: number | null; readonly cost_micros: number } | null;
  readonly delta_micros: number;
}

export interface InvoiceLine {
  readonly day: string;
  readonly destination_country: string;
  readonly currency: string;
  /** Null when the invoice has no record count. */
  readonly records: number | null;
  readonly cost_micros: number;
  readonly line: number;
}

/** The most one invoice line may cost: 10^15 micro-units, as for a record (core/cdr/validate.ts). */
const MAX_LINE_MICROS = 10n ** 15n;

/**
 * A decimal amount in major units (`12.345678`, `-0.5`; `1e3` refused) → integer micro-units, exactly: digits are
 * joined as text, never scaled in floating point (found from outside: 9007199254.740993 came out …992). At most a
 * billion major units a line, so that the sums of a month's lines stay exact too.
 */
export function decimalToMicros(text: string, where: string): number {
  const m = /^(-)?(\d{1,12})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new PipelineError('config_invalid', `${where}: "${text.slice(0, 40)}" is not a decimal amount with at most 6 decimals`);
  const micros = BigInt(m[2]!) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'));
  if (micros > MAX_LINE_MICROS) throw new PipelineError('config_invalid', `${where}: "${text.slice(0, 40)}" is over a billion (10^9) major units`);
  return Number(m[1] ? -micros : micros);
}

function cellKey(c: { day: string; destination_country: string; currency: string }): string {
  return `${c.day}|${c.destination_country}|${c.currency}`;
}

export function reconcile(ours: readonly CostCell[], invoice: readonly InvoiceLine[], toleranceMicros = 0): Difference[] {
  const mine = new Map<string, CostCell>();
  for (const c of ours) mine.set(cellKey(c), c);
  const theirs = new Map<string, { day: string; destination_country: string; currency: string; records: number | null; cost_micros: number }>();
  for (const l of invoice) {
    const k = cellKey(l);
    const prev = theirs.get(k);
    theirs.set(k, {
      day: l.day,
      destination_country: l.destination_country,
      currency: l.currency,
      records: prev ? (prev.records === null || l.records === null ? null : prev.records + l.records) : l.records,
      cost_micros: addMicros(prev?.cost_micros ?? 0, l.cost_micros, `the invoice's ${l.currency} cost of ${l.day}, ${l.destination_country || 'no country'}`),
    });
  }
  const out: Difference[] = [];
  for (const k of new Set([...mine.keys(), ...theirs.keys()])) {
    const a = mine.get(k);
    const b = theirs.get(k);
    const cell = (a ?? b)!;
    const base = { day: cell.day, destination_country: cell.destination_country, currency: cell.currency };
    const oursSide = a ? { records: a.records, cost_micros: a.cost_micros } : null;
    const invoiceSide = b ? { records: b.records, cost_micros: b.cost_micros } : null;
    if (!b) out.push({ ...base, kind: 'missing_in_invoice', ours: oursSide, invoice: null, delta_micros: -(a?.cost_micros ?? 0) });
    else if (!a) out.push({ ...base, kind: 'missing_in_ours', ours: null, invoice: invoiceSide, delta_micros: b.cost_micros });
    else if (Math.abs(addMicros(b.cost_micros, -a.cost_micros, `the ${cell.currency} difference of ${cell.day}`)) > toleranceMicros)
      out.push({ ...base, kind: 'cost_differs', ours: oursSide, invoice: invoiceSide, delta_micros: b.cost_micros - a.cost_micros });
    else if (b.records !== null && b.records !== a.records)
      out.push({ ...base, kind: 'records_differ', ours: oursSide, invoice: invoiceSide, delta_micros: b.cost_micros - a.cost_micros });
  }
  return out.sort((x, y) => cellKey(x).localeCompare(cellKey(y)));
}
