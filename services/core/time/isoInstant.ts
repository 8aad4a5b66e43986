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
  // Instants are kept to the millisecond: a finer fraction is refused rather than cut, which would move a range's edge
  // (found from outside: `from` …00.0009Z answered a record at …00.000Z, before it). Trailing zeros are fine.
  if (frac !== undefined && /[1-9]/.test(frac.slice(3))) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
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
 * identifier — an address (`@`) or a number's shape (5 digits or more among only digits and separators) — which no
 * message repeats (found from outside: `"from":"+60123456789"` came back in the 400).
 */
const QUOTED_MAX = 64;

export function quotedValue(text: string): string {
  // Compatibility forms first: a full-width `＠` or full-width digits are an address or a number all the same (found in
  // review: `alice＠example.com` came back in a 404); so is a `tel:`, `sip:` or `mailto:` URI.
  const plain = text.normalize('NFKC');
  const digits = plain.replace(/\D/g, '').length;
  if (plain.includes('@') || /^\s*(?:tel|sips?|mailto):/i.test(plain) || (digits >= 5 && /^[\s+\d\-()./]*$/.test(plain))) return 'the value';
  // A number inside other text (`x60123456789x`, `hold-60123456789`) too: a run of 7 digits or more (found from outside).
  if (/\d{7}/.test(plain)) return 'the value';
  // Long enough for the ids the API gives (41 characters); a longer value says that it was cut.
  return text.length > QUOTED_MAX ? `${JSON.stringify(text.slice(0, QUOTED_MAX))} (cut at ${QUOTED_MAX} characters)` : JSON.stringify(text);
}

/** What a caller is told about a value parseIsoInstant refused (never a value that may be an identifier). */
export function isoInstantProblem(field: string, text: string): string {
  return `${field}: ${quotedValue(text)} is not an ISO 8601 instant (YYYY-MM-DDThh:mm:ss[.sss]Z or ±hh:mm, or YYYY-MM-DD for midnight UTC; a real calendar date, years 2000-9999, to the millisecond at most)`;
}
