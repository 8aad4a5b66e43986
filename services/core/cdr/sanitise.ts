import ipaddr from 'ipaddr.js';
import type { CdrEvent } from './cdrEvent.ts';
import { asciiDiallable } from '../identity/normalise.ts';

/**
 * Free-text fields that outlive the identifier window (the 10-year `cdr` table, downstream topics) must not carry
 * an identifier in them. Two fields are free-form on the wire and are cleaned rather than rejected (the rest of the
 * record is good traffic data):
 *
 * - `error_code`: a bounded code — letters, digits, `_ . : -` and single spaces, at most 40 characters, as operators
 *   write them (`MAP:27`, `SMPP:0x0000000B`, `SMTP:550 5.1.1`, `SIP:486 Busy Here`). Anything after the first other
 *   character is dropped (an `@`, a `+`, brackets…), and when that character is in a word holding an `@`, the word's start too (an email's local part); a
 *   code that still holds a phone number is dropped whole: a run of 7 or more digits, digit groups joined by spaces,
 *   dots or dashes as a number is written (`012-345 6789`: see `numberShaped`), or the last 7 digits of the record's own sender or
 *   recipient among its digits (hexadecimal codes of up to 32 bits, `0x0000000B`, excepted). A name written in plain
 *   words is not recognised: error texts are the operator's, not the subscriber's.
 * - `client_ip`: must parse as an IPv4 dotted quad or an IPv6 address; stored in canonical form (an IPv4-mapped
 *   IPv6 address as IPv4, no zone id). Anything else is dropped.
 *
 * What was dropped is reported, so ingest counts it (`cdr_ingest_fields_dropped_total{field}`).
 */
export type DroppedField = 'error_code' | 'client_ip';

export interface Sanitised {
  readonly event: CdrEvent;
  readonly dropped: readonly DroppedField[];
}

const CODE_PREFIX = /^[A-Za-z0-9_.:-]+(?: [A-Za-z0-9_.:-]+)*/;
const MAX_CODE = 40;
/** A hexadecimal code of up to 32 bits (`0x0000000B`); a longer `0x…` run may be a number behind a prefix. */
const HEX = /0x[0-9a-f]{1,8}(?![0-9a-f])/gi;
const PHONE_RUN = /\d{7,}/;
/** Digit groups joined by single spaces, dots or dashes: `012-345 6789`, `60.12.345.6789`. */
const SEPARATED_DIGITS = /\d+(?:[ .-]\d+)+/g;
/** From this many digits a separated run is taken for a phone number (`SMTP:550 5.1.1` has 6, a national number 8+). */
const SEPARATED_PHONE_DIGITS = 8;
/** The last digits of a party's number that, found among a code's digits, mean the code holds that number. */
const PARTY_TAIL = 7;

/** Separated digits that are codes, not numbers: a dotted quad (`10.20.30.40`), a date (`2024-11-30`). */
const NOT_A_NUMBER = /^(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\d{4}-\d{2}-\d{2})$/;

/**
 * A run of 7+ digits, or separated digit groups written as a phone number is: 8+ digits in 3 or more groups, none of
 * a single digit. Not SMTP's enhanced codes (`550 5.7.133`: single digits), a vendor and result code
 * (`10415 5030`: two groups), an address or a date (found in review: these were dropped).
 */
function numberShaped(code: string): boolean {
  if (PHONE_RUN.test(code)) return true;
  for (const m of code.matchAll(SEPARATED_DIGITS)) {
    const groups = m[0].split(/[ .-]/);
    if (groups.length < 3 || groups.some((g) => g.length === 1) || NOT_A_NUMBER.test(m[0])) continue;
    if (groups.join('').length >= SEPARATED_PHONE_DIGITS) return true;
  }
  return false;
}

/**
 * `parties`: the record's sender and recipient as sent. A code whose digits hold the last 7 digits of either is that
 * party's number, however it is written (found from outside: `MAP:27 60 12 345 6789`, `invalid dest 012-345 6789` were
 * stored for ten years and published).
 */
export function sanitiseErrorCode(raw: string | null, parties: readonly string[] = []): { code: string | null; dropped: boolean } {
  if (raw === null) return { code: null, dropped: false };
  const trimmed = raw.trim();
  if (trimmed === '') return { code: null, dropped: raw.length > 0 };
  let prefix = CODE_PREFIX.exec(trimmed)?.[0] ?? '';
  // The cut falls inside a word with an `@` in it: the word is an email address, and what the cut left of it (all of
  // it up to the `@`, or up to a `+`, `%`, `/` or a letter outside ASCII in its local part) goes too (found from
  // outside, 2026-12-06: `bounce alice.smith+tag@example.com` kept `alice.smith` for ten years).
  const restOfWord = /^\S*/.exec(trimmed.slice(prefix.length))?.[0] ?? '';
  if (restOfWord.includes('@')) prefix = prefix.replace(/\s*\S+$/, '');
  prefix = prefix.slice(0, MAX_CODE).trim();
  const withoutHex = prefix.replace(HEX, '');
  if (prefix === '' || numberShaped(withoutHex)) return { code: null, dropped: true };
  const digits = withoutHex.replace(/\D/g, '');
  if (digits.length >= PARTY_TAIL) {
    for (const party of parties) {
      const partyDigits = asciiDiallable(party).replace(/\D/g, '');
      if (partyDigits.length >= PARTY_TAIL && digits.includes(partyDigits.slice(-PARTY_TAIL))) return { code: null, dropped: true };
    }
  }
  return { code: prefix, dropped: prefix !== trimmed };
}

/** A canonical IPv4 dotted quad (no leading zeros): the common case, accepted without a parse. */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * Results for the other spellings (IPv6 above all), by raw text: a parse costs ~20 µs, and client IPs repeat (an
 * account's API clients). Bounded; emptied when full. Client IPs are usage data stored with the record anyway.
 */
const parsed = new Map<string, { ip: string | null; dropped: boolean }>();
const MAX_PARSED = 4096;

export function sanitiseClientIp(raw: string | null): { ip: string | null; dropped: boolean } {
  if (raw === null) return { ip: null, dropped: false };
  if (PLAIN_IPV4.test(raw)) return { ip: raw, dropped: false };
  let result = parsed.get(raw);
  if (result === undefined) {
    result = parseClientIp(raw);
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(raw, result);
  }
  return result;
}

function parseClientIp(raw: string): { ip: string | null; dropped: boolean } {
  const text = raw.trim().replace(/%[\w.-]+$/, ''); // an IPv6 zone id names a local interface, not the client
  if (text === '') return { ip: null, dropped: raw.length > 0 };
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { ip: ipaddr.IPv4.parse(text).toString(), dropped: false };
  if (ipaddr.IPv6.isValid(text) && text.includes(':')) {
    const v6 = ipaddr.IPv6.parse(text);
    return { ip: v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toString(), dropped: false };
  }
  return { ip: null, dropped: true };
}

export function sanitiseCdr(e: CdrEvent): Sanitised {
  const dropped: DroppedField[] = [];
  const code = sanitiseErrorCode(e.error_code, [e.sender, e.recipient]);
  if (code.dropped) dropped.push('error_code');
  const ip = sanitiseClientIp(e.client_ip);
  if (ip.dropped) dropped.push('client_ip');
  if (code.code === e.error_code && ip.ip === e.client_ip) return { event: e, dropped };
  return { event: { ...e, error_code: code.code, client_ip: ip.ip }, dropped };
}
