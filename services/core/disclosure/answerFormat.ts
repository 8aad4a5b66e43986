import { canonicalJson } from './canonical.ts';

/**
 * The three forms of an answer, written piece by piece so an answer of any size streams with bounded memory:
 *
 * - `json` (default): one document, `{<header members>, "records": [...], <trailer members>, "integrity": {...}}`.
 *   Self-contained: `cdr lea verify FILE` checks it alone.
 * - `ndjson` (`Accept: application/x-ndjson`): one record per line, nothing else; the header, trailer and
 *   integrity block are the request's receipt (`GET /v1/lea/requests/{id}`), verified together with the file.
 * - `csv` (`Accept: text/csv`): a header row of {@link CSV_COLUMNS}, one row per record (RFC 4180 quoting).
 *
 * Records are written in canonical JSON (RFC 8785), the form their digests are computed over.
 */
export type AnswerFormat = 'json' | 'ndjson' | 'csv';

export const CONTENT_TYPES: Record<AnswerFormat, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/**
 * The q of `type` under an Accept header: that of the most specific range matching it (exact, then `major/*`, then
 * `*\/*`), 0 when none does; 1 with no header.
 */
function qualityOf(accept: string | undefined, type: string): number {
  if (!accept || accept.trim() === '') return 1;
  let best = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    const specificity = range === type ? 2 : range.endsWith('/*') && range !== '*/*' && type.startsWith(range.slice(0, -1)) ? 1 : range === '*/*' ? 0 : -1;
    if (specificity <= best) continue;
    best = specificity;
    const given = params.find((p) => p.startsWith('q='));
    const value = given === undefined ? 1 : Number(given.slice(2));
    q = Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
  }
  return q;
}

/** Whether an Accept header admits one of `types` (q > 0 by its most specific range); no header admits anything. */
export function acceptsAnyOf(accept: string | undefined, types: readonly string[]): boolean {
  return types.some((t) => qualityOf(accept, t) > 0);
}

/** Of `types`, the one an Accept header prefers (highest q; the earlier on a tie), or undefined when it admits none. */
export function preferredOf(accept: string | undefined, types: readonly string[]): string | undefined {
  let chosen: string | undefined;
  let top = 0;
  for (const t of types) {
    const q = qualityOf(accept, t);
    if (q > top) {
      top = q;
      chosen = t;
    }
  }
  return chosen;
}

/** The answer format an Accept header asks for: the first of ndjson, csv or json it names (json by default). */
export function answerFormatOf(accept: string | undefined): AnswerFormat | undefined {
  if (!accept || accept.trim() === '') return 'json';
  const ranges = accept
    .split(',')
    .map((part) => {
      const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type, q: q ? Number(q.slice(2)) : 1 };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const r of ranges) {
    if (r.type === 'application/x-ndjson' || r.type === 'application/ndjson') return 'ndjson';
    // `text/*`: of the text types only CSV is answered (acceptsAnyOf lets it through: it was a 406, found in review).
    if (r.type === 'text/csv' || r.type === 'text/*') return 'csv';
    if (r.type === 'application/json' || r.type === 'application/*' || r.type === '*/*') return 'json';
  }
  return undefined;
}

/**
 * Record columns of the CSV form, in order. Numbers are written as digits; `hold_id` (present only on records answered
 * from a legal hold's copy) as an empty cell when absent, every other column is always present. A null (a record without
 * `duration_ms`, `destination_country`, `mcc` or `mnc`) is an empty cell.
 */
export const CSV_COLUMNS = [
  'cdr_id',
  'account_id',
  'event_time',
  'channel',
  'direction',
  'sender',
  'recipient',
  'sender_type',
  'recipient_type',
  'status',
  'duration_ms',
  'provider_id',
  'destination_country',
  'mcc',
  'mnc',
  'segments',
  'source',
  'hold_id',
] as const;
const NUMERIC_COLUMNS = new Set<string>(['duration_ms', 'segments']);
const OPTIONAL_COLUMNS = new Set<string>(['hold_id']);
/** Columns whose empty cell is null: the record had none (answers give null, never "", for these). */
const NULLABLE_COLUMNS = new Set<string>(['duration_ms', 'destination_country', 'mcc', 'mnc']);

/** A text a spreadsheet would run as a formula (or a text that starts like the escape itself). */
const FORMULA_START = /^[=+\-@\t\r']/;
/** A number as answers write it (`+` and digits, perhaps separators): a spreadsheet reads it as a number, runs nothing. */
const WRITTEN_NUMBER = /^\+[\d\s\-().]*$/;

/**
 * A CSV cell. A text that starts like a formula (= + - @, a tab or carriage return) gets a leading `'`, as the billing
 * CSV's cells do, so that opening the answer in a spreadsheet runs nothing (found from outside: a sender id
 * `=HYPERLINK(…)` came back as is); so does a text that starts with `'`, so that `recordsFromCsv` can drop exactly one
 * leading `'` and give back the very record the digest covers. Numbers written `+60…` are left as they are.
 */
function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const raw = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : canonicalJson(value);
  const text = typeof value === 'string' && FORMULA_START.test(raw) && !WRITTEN_NUMBER.test(raw) ? `'${raw}` : raw;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface AnswerWriter {
  readonly format: AnswerFormat;
  readonly contentType: string;
  /** The text before the first record. */
  open(header: Readonly<Record<string, unknown>>): string;
  /** One record: its canonical JSON line (from RecordDigester.add) and the record itself. */
  record(canonicalLine: string, record: Readonly<Record<string, unknown>>): string;
  /** The text after the last record. */
  close(trailer: Readonly<Record<string, unknown>>, integrity: unknown): string;
}

export function answerWriter(format: AnswerFormat): AnswerWriter {
  let first = true;
  switch (format) {
    case 'json':
      return {
        format,
        contentType: CONTENT_TYPES.json,
        open: (header) =>
          `{${Object.entries(header)
            .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v ?? null)},`)
            .join('')}"records":[\n`,
        record: (line) => {
          const out = first ? line : `,\n${line}`;
          first = false;
          return out;
        },
        close: (trailer, integrity) =>
          `\n]${Object.entries(trailer)
            .map(([k, v]) => `,${JSON.stringify(k)}:${canonicalJson(v ?? null)}`)
            .join('')},"integrity":${canonicalJson(integrity)}}\n`,
      };
    case 'ndjson':
      return { format, contentType: CONTENT_TYPES.ndjson, open: () => '', record: (line) => `${line}\n`, close: () => '' };
    case 'csv':
      return {
        format,
        contentType: CONTENT_TYPES.csv,
        open: () => `${CSV_COLUMNS.join(',')}\r\n`,
        record: (_line, record) => `${CSV_COLUMNS.map((c) => csvCell(record[c])).join(',')}\r\n`,
        close: () => '',
      };
  }
}

/** Parses RFC 4180 CSV text into rows of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

/** The records of a CSV answer, typed as in the JSON form (numbers as numbers; an empty hold_id absent). */
export function recordsFromCsv(
  text: string,
  /** false: read an empty cell of a nullable column as "" (answers signed before absent fields were null). */
  { emptyAsNull = true }: { readonly emptyAsNull?: boolean } = {},
): Record<string, unknown>[] {
  const [head, ...rows] = parseCsv(text);
  if (!head) return [];
  return rows
    .filter((r) => r.length > 1 || (r[0] ?? '') !== '')
    .map((cells) => {
      const rec: Record<string, unknown> = {};
      head.forEach((col, i) => {
        const v = cells[i] ?? '';
        if (v === '' && OPTIONAL_COLUMNS.has(col)) return;
        if (v === '' && emptyAsNull && NULLABLE_COLUMNS.has(col)) {
          rec[col] = null;
          return;
        }
        rec[col] = NUMERIC_COLUMNS.has(col) && /^-?\d+$/.test(v) ? Number(v) : v.startsWith("'") ? v.slice(1) : v;
      });
      return rec;
    });
}
