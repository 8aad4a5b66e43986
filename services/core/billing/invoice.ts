import { parse } from 'csv-parse/sync';
import { COUNTRY_CODES, ISO_4217 } from '../cdr/codes.ts';
import { quotedValue } from '../time/isoInstant.ts';
import { decimalToMicros, type InvoiceLine } from './reconcile.ts';

/**
 * A provider's invoice, as `cdr billing reconcile` reads it: CSV (UTF-8, a BOM allowed) with a header naming `day`
 * (or `date`), `destination_country` (or `country`), `currency`, `cost` (decimal in major units, e.g. 12.345678) and
 * optionally `records`; other columns are ignored. Lines of the same day, country and currency are added together by
 * the comparison (an invoice may split a day by product), and a negative cost is a credit.
 *
 * Every problem is named, by line; none quotes more of the file than a field's first characters (a file that is not
 * an invoice — a binary, a UTF-16 export — is said to be that, not dumped back on the terminal).
 */
export type InvoiceReading = { readonly ok: true; readonly lines: InvoiceLine[] } | { readonly ok: false; readonly problems: string[] };

/** A line as csv-parse gives it with `info: true`. */
interface InfoRow {
  readonly record: Record<string, string>;
  readonly info: { readonly lines: number; readonly invalid_field_length: number };
}

const REQUIRED: readonly (readonly [string, ...string[]])[] = [['day', 'date'], ['destination_country', 'country'], ['currency'], ['cost']];
const MAX_PROBLEMS = 50;

export function readInvoiceText(bytes: Uint8Array, month: string): InvoiceReading {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    return { ok: false, problems: ['the file is UTF-16 text (a spreadsheet\'s "Unicode text" export?): save it as CSV in UTF-8'] };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, problems: ['the file is not UTF-8 text (is it a CSV?)'] };
  }
  // The header first, alone: a file in another layout (semicolons) is named as such before its lines are counted.
  let header: string[];
  try {
    const first = parse(text, { to: 1, skip_empty_lines: true, trim: true, bom: true, relax_column_count: true })[0];
    if (first === undefined)
      return { ok: false, problems: [`the file has no header line (it names the columns: ${REQUIRED.map((n) => n[0]).join(', ')}[, records])`] };
    header = first.map((c) => c.toLowerCase());
  } catch (cause) {
    return { ok: false, problems: [csvProblem(cause)] };
  }
  const missing = REQUIRED.filter((names) => !names.some((n) => header.includes(n))).map((names) => names.join('" or "'));
  if (missing.length > 0) {
    // Quoted as any refused value is (never a number's or an address's shape): a file without its header line has a
    // record there, which may hold an identifier (found in review).
    const shown = header.slice(0, 12).map((c) => quotedValue(c.slice(0, 60)));
    return {
      ok: false,
      problems: [
        `the header names no "${missing.join('", no "')}" column (it has: ${shown.join(', ')}${header.length > 12 ? ', …' : ''}); comma-separated, one column per field`,
      ],
    };
  }
  // With each record the line it ends on (a blank line skipped or a quoted field over two lines keeps the count true).
  // A column named twice: csv-parse would keep the last silently, so which cost was compared would be a guess.
  const known = new Set(REQUIRED.flat().concat('records'));
  const twice = [...new Set(header.filter((c, i) => known.has(c) && header.indexOf(c) !== i))];
  if (twice.length > 0) return { ok: false, problems: [`the header names ${twice.map((c) => `"${c}"`).join(', ')} more than once`] };
  let rows: InfoRow[];
  try {
    // Ragged lines are named with the rest, not alone (found from outside: one line of 5 fields hid 8 other bad lines).
    rows = parse<InfoRow>(text, {
      columns: (h: string[]) => h.map((c) => c.toLowerCase()),
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
      relax_column_count: true,
    });
  } catch (cause) {
    return { ok: false, problems: [csvProblem(cause)] };
  }
  const problems: string[] = [];
  const lines: InvoiceLine[] = [];
  let ragged = 0;
  for (const { record: r, info } of rows) {
    const line = info.lines;
    if (info.invalid_field_length > ragged) {
      ragged = info.invalid_field_length;
      // Its fields cannot be told apart: named, and not read further.
      problems.push(`line ${line}: not as many fields as the header has columns (comma-separated, one value per column)`);
      continue;
    }
    const day = r['day'] ?? r['date'] ?? '';
    const country = (r['destination_country'] ?? r['country'] ?? '').toUpperCase();
    const currency = (r['currency'] ?? '').toUpperCase();
    if (!calendarDayOf(day, month)) problems.push(`line ${line}: day ${quoted(day.slice(0, 20))} is not a date (YYYY-MM-DD) of ${month}`);
    // Empty: traffic without a destination country, which our cost cells carry as "" (found from outside: such a cell
    // could never be matched, so the provider always reconciled with a difference).
    if (country !== '' && !COUNTRY_CODES.has(country))
      problems.push(`line ${line}: destination_country ${quoted(country.slice(0, 10))} is not an ISO 3166 code (or empty: no country)`);
    if (!ISO_4217.has(currency)) problems.push(`line ${line}: currency ${quoted(currency.slice(0, 10))} is not an ISO 4217 code`);
    let cost = 0;
    try {
      cost = decimalToMicros(r['cost'] ?? '', `line ${line}: cost`);
    } catch (err) {
      problems.push((err as Error).message);
    }
    const recordsText = r['records']?.trim();
    // Digits only: Number() read `0x2` as 2 and `1e1` as 10 (found from outside).
    const records = recordsText === undefined || recordsText === '' ? null : /^\d{1,15}$/.test(recordsText) ? Number(recordsText) : NaN;
    if (records !== null && !Number.isSafeInteger(records)) problems.push(`line ${line}: records ${quoted(String(recordsText).slice(0, 20))} is not a count`);
    lines.push({ day, destination_country: country, currency, records, cost_micros: cost, line });
  }
  if (problems.length > MAX_PROBLEMS) return { ok: false, problems: [...problems.slice(0, MAX_PROBLEMS), `… and ${problems.length - MAX_PROBLEMS} more`] };
  return problems.length > 0 ? { ok: false, problems } : { ok: true, lines };
}

/** A field as a message quotes it: its first characters, control characters escaped (JSON's quoting). */
const quoted = (text: string): string => JSON.stringify(text);

/** csv-parse's refusal in words, by line; its own message quotes the field, which may be any bytes. */
function csvProblem(cause: unknown): string {
  const err = cause as { code?: unknown; lines?: unknown };
  const at = typeof err.lines === 'number' ? `line ${err.lines}: ` : '';
  switch (err.code) {
    case 'CSV_RECORD_INCONSISTENT_COLUMNS':
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
      return `${at}not as many fields as the header has columns (comma-separated, one value per column)`;
    case 'INVALID_OPENING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_QUOTE_NOT_CLOSED':
      return `${at}a quote out of place (a field with a quote is quoted whole, its quotes doubled)`;
    default:
      return `${at}not readable as CSV (${typeof err.code === 'string' ? err.code : 'unknown error'})`;
  }
}

/** Whether `day` is `YYYY-MM-DD` of `month` and on the calendar (not 2026-11-31, -00 or 2026-02-30). */
function calendarDayOf(day: string, month: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || !day.startsWith(`${month}-`)) return false;
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const at = new Date(Date.UTC(y, m - 1, d));
  return at.getUTCFullYear() === y && at.getUTCMonth() === m - 1 && at.getUTCDate() === d;
}
