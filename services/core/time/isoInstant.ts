/**
 * Strict ISO 8601 instants at the edges (API bodies and queries, command-line options). `Date.parse` accepts
 * `2026-02-30` (as 2 March) and years like 0000; an instant here must be a real calendar date and time with an
 * explicit zone (`Z` or `±hh:mm`), or a bare date (`YYYY-MM-DD`, midnight UTC), between the years 2000 and 9999.
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function parseIsoInstant(text: string): number | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < 2000 || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  if (h === undefined) return Date.UTC(year, month - 1, day);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  // Instants are kept to the millisecond, and a finer fraction is rounded up, never cut: records have whole milliseconds
  // and ranges are [from, to), so t ≥ from ⇔ t ≥ ⌈from⌉ and t < to ⇔ t < ⌈to⌉ — the range selects exactly what was
  // asked (found from outside: cut, `from` …00.0009Z answered a record at …00.000Z, before it). Python's and Java's
  // clocks write microseconds, so such instants are common.
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0')) + (/[1-9]/.test(frac.slice(3)) ? 1 : 0);
  let offset = 0;
  if (zone && zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset;
}

/**
 * A refused value as a message may quote it: up to 64 characters, or "the value" when it may be a person's
 * identifier — an address (`@`), a URI of one, a number's shape (5 digits or more among only digits and separators),
 * or a number inside other text (7 digits in a row, or 9 with separators), in any script — which no message repeats (found from
 * outside: `"from":"+60123456789"` came back in a 400, `x60123456789x` in a 404). The API's own ids are quoted whole.
 */
const QUOTED_MAX = 64;
/** The ids the API gives (`lea-`, `dsar-`, `hold-` + a UUID): never an identifier, and what a caller needs to see. */
const API_ID = /^(?:lea|dsar|hold)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function quotedValue(text: string): string {
  if (API_ID.test(text)) return JSON.stringify(text);
  // Compatibility forms first: a full-width `＠` or full-width digits are an address or a number all the same (found in
  // review: `alice＠example.com` came back in a 404); so is a `tel:`, `sip:` or `mailto:` URI. Digits of any script
  // (Arabic-Indic, Devanagari…) count as digits.
  // Invisible format characters (zero-width space, direction marks, soft hyphen) go first; a dash of any kind (en, em,
  // the minus sign) separates digits as `-` does (found from outside: `012–345–6789` was quoted in a 404, and the
  // law-enforcement route reads it as the number).
  const plain = text.normalize('NFKC').replace(/\p{Cf}/gu, '');
  const digits = plain.replace(/\P{Nd}/gu, '').length;
  if (plain.includes('@') || /^\s*(?:tel|sips?|mailto):/i.test(plain) || (digits >= 5 && /^[\s+\p{Nd}\p{Pd}\u2212()./_,;]*$/u.test(plain))) return 'the value';
  // Inside other text: 7 digits in a row, or 9 and more with single separators between them (`+60 12-345 6789x`; `_`,
  // `,` and `;` too since 2026-12-07: `lea-0123_456_789` was quoted in a 404, found from outside);
  // a date's 8 (`2026-13-01`) stay quotable.
  if (/\p{Nd}{7}/u.test(plain)) return 'the value';
  for (const run of plain.match(/\p{Nd}(?:[\s\p{Pd}\u2212()./_,;]?\p{Nd})*/gu) ?? []) if (run.replace(/\P{Nd}/gu, '').length >= 9) return 'the value';
  return text.length > QUOTED_MAX ? `${JSON.stringify(text.slice(0, QUOTED_MAX))} (cut at ${QUOTED_MAX} characters)` : JSON.stringify(text);
}

/** What a caller is told about a value parseIsoInstant refused (never a value that may be an identifier). */
export function isoInstantProblem(field: string, text: string): string {
  return `${field}: ${quotedValue(text)} is not an ISO 8601 instant (YYYY-MM-DDThh:mm:ss[.sss]Z or ±hh:mm, or YYYY-MM-DD for midnight UTC; a real calendar date, years 2000-9999)`;
}
