import { PipelineError } from '../errors/pipelineError.ts';
import { COUNTRY_CODES, ISO_4217 } from './codes.ts';
import { trafficCutoff } from '../retention/retentionCalendar.ts';
import { asciiDiallable, blankIdentifier, normalisePhone, typeOfInternational } from '../identity/normalise.ts';
import type { CdrEvent } from './cdrEvent.ts';

/**
 * Checks a decoded CDR beyond what Avro types guarantee. A failure is dead-lettered with a reason that
 * names the field and the rule, never the value (values may be identifiers).
 */
export const EARLIEST_EVENT_TIME = Date.UTC(2000, 0, 1);
const MAX_ID = 128;
const INT32_MAX = 2 ** 31 - 1;
/** A billion units of any currency per record: far beyond any real CDR, far within a sum of many in Int64. */
const MAX_MICROS = 10 ** 15;
const PRINTABLE = /^[\x21-\x7e]+$/;

/** An email address, or a phone number written internationally (`+` and 7-15 digits, or a `tel:` URI). */
export function identifierShaped(v: string): boolean {
  if (v.includes('@')) return /[^@]+@[^@]+\.[^@]+/.test(v);
  // `tel:` (any case: URI schemes are case-insensitive) marks a telephone number with or without the `+`, and RFC 3966's
  // visual separators (`-`, `.`, `(`, `)`) may come between its digits (found from outside: `tel:60123456789` was taken
  // as an account id and quoted back in a 404; in review: `Tel:…`, `tel:+60-12-345-6789`).
  const m = /^(?:tel:\+?|\+)([\d\-.()]+)$/i.exec(v);
  if (!m) return false;
  const digits = m[1]!.replace(/\D/g, '').length;
  return digits >= 7 && digits <= 15;
}

/**
 * An address: a word (from the text's start or a space) with an `@` and a domain whose last label is letters (or
 * punycode) — not `Order 12@p.34`. Tried only at word starts: unanchored, a long text without a match took time
 * quadratic in its length (200 ms for 1,024 characters that NFKC expands, measured in review).
 */
const EMAIL_IN_TEXT = /(?<![^\s])[^\s@]+@[^\s@]+\.(?:\p{L}{2,}|xn--[a-z0-9-]+)(?![\p{L}\p{N}])/iu;
/**
 * A number written internationally: `+` (not inside a word or a number: `GMT+8`, `0042+0043`) or `tel:` starting a
 * word, an opening bracket or a space or two, then 7 or more digits of any script with the separators people write
 * between them — spaces, dashes of any kind, the minus sign, dots and brackets; `/` too only right after a `+` that a
 * digit follows (`+60/12/345/6789`, found from outside), not after `+ ` (`196/2003 + 101/2018`).
 */
const NUMBER_IN_TEXT =
  /(?:(?:(?<![\p{L}\p{N}])\+|(?<![\p{L}\p{N}])tel:\s*\+?)[\s(]{0,2}\p{Nd}(?:[\s\p{Pd}\u2212.()]{0,3}\p{Nd}){6,}|(?<![\p{L}\p{N}])\+\p{Nd}(?:[\s\p{Pd}\u2212.()/]{0,3}\p{Nd}){6,})/iu;
/**
 * A number written with an exit code instead of `+` (`0060 12 345 6789`, `011 44 20 7946 0000`), as a word: the exit code
 * and groups of digits with the separators people write. Which of it is a number is for the numbering plan to say
 * (`numberAfterExitCode`): case numbers start with zeros too (`Warrant 0012345678`).
 */
const EXIT_CODE_NUMBER = /(?<![\p{L}\p{N}])(?:0011|00|011)[\s(]{0,2}\p{Nd}+(?:[\s\p{Pd}\u2212.()]{1,3}\p{Nd}+){0,7}/gu;
/**
 * A `+` glued to what comes before it (`ref+60123456789`, `1+60…`), which NUMBER_IN_TEXT leaves alone for `GMT+8` and
 * `0042+0043`: a number when the numbering plan reads the groups after it as one (found from outside, 2026-12-07).
 */
const GLUED_PLUS_NUMBER = /(?<=[\p{L}\p{N}])\+[\s(]{0,2}\p{Nd}+(?:[\s\p{Pd}\u2212.()]{1,3}\p{Nd}+){0,7}/gu;
/** A number written internationally without its `+`: 10 to 15 digits in a row, as a word, not led by 0 (`60123456789`). */
const BARE_INTERNATIONAL = /(?<![\p{L}\p{N}/+\p{Pd}.])[1-9]\p{Nd}{9,14}(?![\p{L}\p{N}/]|[\p{Pd}.]\p{Nd})/gu;
/** Invisible format characters (zero-width space, word joiner, soft hyphen…): removed before looking. */
const FORMAT_CHARACTERS = /\p{Cf}/gu;

/**
 * Whether free text (a case reference, a reason) holds an email address or a phone number written internationally,
 * in any width or script (`＋６０…`, `alice＠example.com`), with invisible characters anywhere in it. Bare digit runs are
 * not taken for numbers (case and warrant numbers are those), nor `00` numbers.
 */
export function identifierInText(text: string): boolean {
  const t = text.normalize('NFKC').replace(FORMAT_CHARACTERS, '');
  if (EMAIL_IN_TEXT.test(t) || NUMBER_IN_TEXT.test(t) || OBFUSCATED_EMAIL.test(t)) return true;
  // An address percent-encoded (`mailto:bob%40example.com`) is still one.
  if (/%40/i.test(t) && EMAIL_IN_TEXT.test(t.replace(/%40/gi, '@'))) return true;
  // Found from outside (2026-12-07): `0060123456789` and `60123456789` in a case reference were kept 36 months in the
  // audit trail, and shown in another subject's data-subject export. Digit runs are case numbers too, so only those
  // the numbering plan reads as a valid number are taken for one.
  const digits = asciiDiallable(t); // digits of every script as ASCII, for the exit code too
  for (const m of digits.matchAll(EXIT_CODE_NUMBER)) if (numberAfterExitCode(m[0])) return true;
  for (const m of digits.matchAll(GLUED_PLUS_NUMBER)) if (numberAfterExitCode(m[0])) return true;
  for (const m of digits.matchAll(BARE_INTERNATIONAL)) if (mobileNumber(m[0])) return true;
  return false;
}

/**
 * Whether bare digits are a valid mobile number read internationally: a person's, most likely. Not any valid number:
 * references that start with a year (`20261207001`) read as a Cairo landline (+20 2…).
 */
function mobileNumber(digits: string): boolean {
  const type = typeOfInternational(`+${digits}`);
  return type === 'MOBILE' || type === 'FIXED_LINE_OR_MOBILE';
}

/** Whether an exit code (or a `+`) and the groups after it begin with a valid international number (7-15 digits, whole groups). */
function numberAfterExitCode(written: string): boolean {
  const groups = written.match(/\d+/g) ?? [];
  const first = groups[0] ?? '';
  if (written.startsWith('+')) return validFrom(first, groups);
  // Each exit code it may start with (`0011` Australia's, `011` North America's, `00` the ITU's): `0011 44…` is `+44…`.
  return [4, 3, 2].some(
    (n) => first.length >= n && (n !== 4 || first.startsWith('0011')) && (n !== 3 || first.startsWith('011')) && validFrom(first.slice(n), groups),
  );
}

/** Whether `start` and the groups after the first begin with a valid international number (7-15 digits, whole groups). */
function validFrom(start: string, groups: readonly string[]): boolean {
  let digits = start;
  for (let g = 1; ; g++) {
    if (digits.length >= 7 && digits.length <= 15 && normalisePhone(`+${digits}`, null).valid) return true;
    if (g >= groups.length || digits.length > 15) return false;
    digits += groups[g];
  }
}

/**
 * An address written to dodge a filter: `alice (at) example.com`, `alice [at] example [dot] com`, `alice at example dot
 * com` is left alone (words). Found from outside (2026-12-07).
 */
const OBFUSCATED_EMAIL =
  /(?<![^\s])[^\s@()[\]{}<>]+\s*[([{<]\s*at\s*[)\]}>]\s*[\p{L}\p{N}-]+(?:(?:\.|\s*[([{<]\s*dot\s*[)\]}>]\s*)[\p{L}\p{N}-]+)*(?:\.|\s*[([{<]\s*dot\s*[)\]}>]\s*)\p{L}{2,}(?![\p{L}\p{N}])/iu;

/** What ingest takes as an account, provider or record id: 1-128 printable ASCII characters, no spaces. */
export function recordIdShaped(v: string): boolean {
  return v.length <= MAX_ID && PRINTABLE.test(v);
}

function fail(message: string): never {
  throw new PipelineError('validation_failed', message);
}

export interface ValidationLimits {
  readonly now: number;
  readonly maxFutureSkewMs: number;
}

export function validateCdr(e: CdrEvent, limits: ValidationLimits): void {
  if (!recordIdShaped(e.cdr_id)) fail('cdr_id: must be 1-128 printable ASCII characters, no spaces');
  // The id is kept ten years and travels everywhere (topics, headers, answers): never a person's +number. An address
  // shape is allowed: a voice switch's id is often its SIP Call-ID (`a84b4c76e66710@pc33.atlanta.com`).
  if (!e.cdr_id.includes('@') && identifierShaped(e.cdr_id)) fail('cdr_id: must not be a phone number');
  if (!recordIdShaped(e.account_id)) fail('account_id: must be 1-128 printable ASCII characters, no spaces');
  if (identifierShaped(e.account_id)) fail('account_id: must not be a phone number or an email address');
  // Blank once control and invisible characters are gone: every such value would share one token (the empty one), so
  // different people's records would answer one request. Found from outside: a recipient of nothing but U+3164.
  if (blankIdentifier(e.sender)) fail('sender: missing (empty, or only spaces, control or invisible characters)');
  if (blankIdentifier(e.recipient)) fail('recipient: missing (empty, or only spaces, control or invisible characters)');
  if (e.sender.length > 320 || e.recipient.length > 320) fail('sender/recipient: longer than 320 characters');
  // U+FFFD is what the Avro decoder puts where the bytes were not UTF-8: different broken spellings would read the same
  // and share one token. The record goes to the DLQ with its original bytes instead (found from outside).
  if (e.sender.includes('\ufffd')) fail('sender: not valid UTF-8 (or holds U+FFFD)');
  if (e.recipient.includes('\ufffd')) fail('recipient: not valid UTF-8 (or holds U+FFFD)');
  if (!Number.isSafeInteger(e.event_time) || e.event_time < EARLIEST_EVENT_TIME) {
    throw new PipelineError('timestamp_out_of_range', 'event_time: before 2000-01-01 or not an integer millisecond time');
  }
  if (e.event_time > limits.now + limits.maxFutureSkewMs)
    throw new PipelineError('timestamp_out_of_range', 'event_time: further in the future than the allowed clock skew');
  if (limits.now >= trafficCutoff(e.event_time))
    throw new PipelineError('timestamp_out_of_range', 'event_time: older than the 10-year traffic retention; nothing may be stored');
  const latest = limits.now + limits.maxFutureSkewMs;
  if (!Number.isSafeInteger(e.submitted_at) || e.submitted_at < EARLIEST_EVENT_TIME || e.submitted_at > latest)
    throw new PipelineError('timestamp_out_of_range', 'submitted_at: before 2000-01-01 or further in the future than the allowed clock skew');
  if (e.delivered_at !== null && (!Number.isSafeInteger(e.delivered_at) || e.delivered_at < EARLIEST_EVENT_TIME || e.delivered_at > latest)) {
    throw new PipelineError('timestamp_out_of_range', 'delivered_at: before 2000-01-01 or further in the future than the allowed clock skew');
  }
  // Avro int fields arrive as whatever the varint held (avsc does not range-check): check every number here, so a
  // crafted value fails this record alone instead of failing later, when it is encoded for downstream.
  if (!Number.isInteger(e.segments) || e.segments < 0 || e.segments > 100_000) fail('segments: must be an integer 0-100000');
  if (!Number.isInteger(e.size_bytes) || e.size_bytes < 0 || e.size_bytes > INT32_MAX) fail('size_bytes: must be an integer 0-2147483647');
  if (e.duration_ms !== null && (!Number.isSafeInteger(e.duration_ms) || e.duration_ms < 0 || e.duration_ms > 7 * 24 * 3600 * 1000))
    fail('duration_ms: must be an integer from 0 to 7 days');
  if (!Number.isSafeInteger(e.price) || !Number.isSafeInteger(e.cost)) fail('price/cost: must be integer micro-units');
  // A record's charge is never a credit: plans refuse negative money too (docs/billing.md), and billing bills a record's
  // own price when the plan trusts it. Refunds and credits are billing adjustments, not traffic.
  if (e.price < 0 || e.cost < 0) fail('price/cost: negative (a credit or refund is a billing adjustment, not a record)');
  if (e.price > MAX_MICROS || e.cost > MAX_MICROS) fail('price/cost: beyond 10^15 micro-units (a billion per record)');
  // No currency is a record without a price (billing rates it by its plan's lines, docs/billing.md); a price or a cost
  // needs its currency.
  if (e.currency === '') {
    if (e.price !== 0 || e.cost !== 0) fail('currency: empty, but price or cost is not 0 (an amount needs its ISO 4217 currency)');
  } else if (!ISO_4217.has(e.currency.toUpperCase())) fail('currency: must be an ISO 4217 code (any case), or empty for a record without a price');
  if (e.destination_country !== null && e.destination_country !== '' && !COUNTRY_CODES.has(e.destination_country.toUpperCase()))
    fail('destination_country: must be an ISO 3166-1 alpha-2 country code (or XK, AC, TA)');
  if (e.mcc !== null && e.mcc !== '' && !/^\d{3}$/.test(e.mcc)) fail('mcc: must be 3 digits');
  if (e.mnc !== null && e.mnc !== '' && !/^\d{2,3}$/.test(e.mnc)) fail('mnc: must be 2 or 3 digits');
  if (!recordIdShaped(e.provider_id)) fail('provider_id: must be 1-128 printable ASCII characters, no spaces');
  if (identifierShaped(e.provider_id)) fail('provider_id: must not be a phone number or an email address');
}
