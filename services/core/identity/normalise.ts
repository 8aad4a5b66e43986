import { domainToASCII } from 'node:url';
import { numberRangeOf } from './numberRange.ts';
import { numberTypeOfParsed, parsedE164, parsedNational, type ParsedPhone } from './numberPlan.ts';
import { Metadata, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/**
 * Identifier normalisation: one person, one normal form, one token; two people, two. Pure functions; the parse cost
 * of libphonenumber-js is why `IdentifierNormaliser` and the Pseudonymiser keep bounded caches of recent inputs.
 *
 * Phone numbers (docs/data-protection.md, "Normalisation", gives every rule and why):
 * - control characters (NUL padding of SMPP strings, zero-width and direction marks) are removed first;
 * - `tel:` URIs (RFC 3966) are read, with a `phone-context` of `+<digits>` as the country part;
 * - vanity letters are dialled as the keypad does (`1-800-FLOWERS`);
 * - with a default region (the destination country), the number is parsed by libphonenumber-js's own rules for
 *   that region: its international dialling prefixes (`0011` in AU, `001`/`002`/`00700` in KR, `001` in HK and SG,
 *   `009` in CO…) and its trunk prefix. No prefix is rewritten by hand: `00` is not an exit code everywhere;
 * - digits that start with the region's own calling code but not with its trunk prefix (`4915…` in DE, `6281…` in
 *   ID: an SMPP peer that dropped the `+`) are the international number when that is valid;
 * - Mexico's retired mobile `1` after `52` is dropped when the result is valid;
 * - the full metadata ("max") validates, so a number is valid only if it matches a real numbering plan.
 */

export type IdentifierType = 'msisdn' | 'email' | 'alphanumeric' | 'shortcode' | 'other';

const IDENTIFIER_TYPES: ReadonlySet<string> = new Set<IdentifierType>(['msisdn', 'email', 'alphanumeric', 'shortcode', 'other']);

export function isIdentifierType(t: string): t is IdentifierType {
  return IDENTIFIER_TYPES.has(t);
}

export interface NormalisedIdentifier {
  readonly type: IdentifierType;
  /** E.164 for phone numbers, lower-case ASCII-domain emails, `CC:digits` shortcodes, cleaned input otherwise. */
  readonly value: string;
  /**
   * False when the input could not be parsed: it is then tokenised as given (cleaned; an international phone number
   * written in digits and separators as `+` and its digits) and flagged.
   */
  readonly valid: boolean;
  /** ISO country of a phone number (or of a shortcode's network), when known. Not an identifier. */
  readonly country: string;
  /** Phone numbers: the number range prefix (digits, no `+`), never the number itself; see numberRange.ts. */
  readonly range?: string;
  /** Phone numbers: the number type from the phone library's metadata (`mobile`, `premium_rate`, …), or ''. */
  readonly numberType?: string;
}

/**
 * C0 and C1 controls (NUL padding included) and every Unicode default-ignorable code point: zero-width characters,
 * direction marks (the Arabic letter mark U+061C too), the BOM, variation selectors, Hangul fillers — but not tag
 * characters, which make emoji flags differ. Nothing a person reads: two spellings that differ only by them look the
 * same, and are one identifier. The Unicode property, not a hand-kept list (found from outside: U+061C before a number,
 * and values of nothing but U+3164, were kept as their own spellings).
 */
const INVISIBLE = /(?![\u{e0000}-\u{e0fff}])[\p{Cc}\p{Default_Ignorable_Code_Point}]/gu;
/**
 * Some character that is not white space and not invisible (above). Tag characters (U+E0000–E0FFF) are not removed:
 * they tell emoji flags apart (Scotland's from Wales's), and two addresses that differ by one are two addresses.
 */
const VISIBLE = /[^\s\p{Cc}\p{Default_Ignorable_Code_Point}]|[\u{e0000}-\u{e0fff}]/u;
const NON_DIALLABLE = /[\s\-().\u00a0/\u2010-\u2015\u2212\u30fc]/g;
/** The separators people write inside one number (not `/`, which may join two). */
const WRITTEN_SEPARATORS = /[\s\-().\u00a0\u2010-\u2015\u2212\u30fc]/g;
const DIGITS = /^\d+$/;
const KEYPAD: Record<string, string> = {
  A: '2',
  B: '2',
  C: '2',
  D: '3',
  E: '3',
  F: '3',
  G: '4',
  H: '4',
  I: '4',
  J: '5',
  K: '5',
  L: '5',
  M: '6',
  N: '6',
  O: '6',
  P: '7',
  Q: '7',
  R: '7',
  S: '7',
  T: '8',
  U: '8',
  V: '8',
  W: '9',
  X: '9',
  Y: '9',
  Z: '9',
};

/** Removes what no person types: NULs and other controls, zero-width characters and direction marks; trims. */
export function cleanIdentifier(raw: string): string {
  return raw.replace(INVISIBLE, '').trim();
}

/**
 * An identifier as ingest keeps it when it cannot read it (flagged): an msisdn as `normalisePhone` keeps an unreadable
 * number, an email cleaned. What `identifier.as_sent` looks up: whatever the country, since such a spelling has none.
 * For `+` and digits this is also a readable number's own form (`+60123456789`), so both share one token.
 */
export function keptAsSent(raw: string, type: 'msisdn' | 'email'): NormalisedIdentifier {
  return type === 'msisdn' ? unreadablePhone(cleanIdentifier(raw)) : unreadableEmail(raw);
}

/** An email address that cannot be read, flagged: cleaned, otherwise as sent. */
function unreadableEmail(raw: string): NormalisedIdentifier {
  return { type: 'email', value: cleanIdentifier(raw), valid: false, country: '' };
}

/** True when nothing would be left of `raw` by `cleanIdentifier` (stops at the first visible character). */
export function blankIdentifier(raw: string): boolean {
  return !VISIBLE.test(raw);
}

/** Fullwidth forms (`＋６０ １２…`, as East Asian input methods type them) and Arabic-Indic and Eastern Arabic
 * (Persian) digits (`٠١٠…`, `۰۹۱…`): the digits libphonenumber reads as digits (its `DIGITS` table), and the fullwidth
 * `+`, brackets and hyphen. */
const NON_ASCII_DIALLABLE = /[\uff01-\uff5e]|(?![0-9])\p{Nd}/gu;
const DECIMAL_DIGIT = /^\p{Nd}$/u;
const ALL_ASCII = /^[ -~]*$/; // printable ASCII (a control character takes the slow path, which leaves it as it is)

/**
 * A decimal digit of any script (Devanagari `९`, Thai `๘`, Bengali `৭`, Arabic-Indic `٣`…) as its value. Unicode
 * keeps each script's digits as a run of ten from its zero, runs sometimes back to back (mathematical digits): the
 * value is the distance from the run's start, modulo ten. Found from outside: `+९१ ९८७६५ ४३२१०` was kept flagged and
 * not found by `+919876543210`; only Arabic-Indic and full-width digits were read before.
 */
function digitValue(c: string): number {
  let start = c.codePointAt(0)!;
  while (start > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (c.codePointAt(0)! - start) % 10;
}

const FULL_WIDTH_ASCII = /[\uff01-\uff5e]/g;
/** Full-width ASCII variants (U+FF01..FF5E) as the ASCII characters they are. */
function fullWidthAsAscii(text: string): string {
  return ALL_ASCII.test(text) ? text : text.replace(FULL_WIDTH_ASCII, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
}

/** Whether a text has an `@`, ASCII or full-width (an East Asian input method's). */
function hasAt(text: string): boolean {
  return text.includes('@') || text.includes('\uff20');
}

/** Digits of any script, and full-width forms, as ASCII (what is dialled); other characters left as they are. */
export function asciiDiallable(text: string): string {
  if (ALL_ASCII.test(text)) return text;
  return text.replace(NON_ASCII_DIALLABLE, (c) => {
    const code = c.charCodeAt(0);
    if (code >= 0xff01 && code <= 0xff5e) return String.fromCharCode(code - 0xfee0); // fullwidth ASCII: U+FF01..FF5E → U+0021..007E
    return String(digitValue(c));
  });
}

/** What is dialled: other scripts' digits as ASCII, separators removed (the input already cleaned). */
function dialString(cleaned: string): string {
  return asciiDiallable(cleaned).replace(NON_DIALLABLE, '');
}

function isCountryCode(c: string | null | undefined): c is CountryCode {
  return typeof c === 'string' && /^[A-Z]{2}$/.test(c);
}

const metadata = new Metadata();
const planCache = new Map<string, { callingCode: string; trunk: string | undefined } | null>();

function planOf(region: CountryCode): { callingCode: string; trunk: string | undefined } | null {
  let p = planCache.get(region);
  if (p === undefined) {
    try {
      metadata.selectNumberingPlan(region);
      // The typings declare NumberingPlan without its accessors; these two exist on every plan.
      const plan = metadata.numberingPlan as unknown as { nationalPrefix(): string | undefined; callingCode(): string } | undefined;
      const trunk = plan?.nationalPrefix();
      p = plan ? { callingCode: plan.callingCode(), trunk: typeof trunk === 'string' && trunk.length > 0 ? trunk : undefined } : null;
    } catch {
      p = null; // not a region libphonenumber knows
    }
    planCache.set(region, p);
  }
  return p;
}

/** The number of a `tel:` URI, with its `phone-context` applied: `+CC` joins the digits, a domain leaves them local. */
function fromTelUri(text: string): string {
  const body = text.slice(4);
  const [number = '', ...params] = body.split(';');
  let context: string | undefined;
  for (const p of params) {
    const [name, value] = p.split('=');
    if (name?.toLowerCase() === 'phone-context' && value) context = value;
  }
  let decoded = number;
  try {
    decoded = decodeURIComponent(number);
  } catch {
    // keep it as written
  }
  if (context?.startsWith('+') && !decoded.startsWith('+')) return `${context}${decoded}`;
  return decoded;
}

function parsed(text: string, region?: CountryCode): ParsedPhone | undefined {
  try {
    return parsePhoneNumberFromString(text, region) ?? undefined;
  } catch {
    return undefined;
  }
}

/** `+` and digits: the E.164 fast path (numberPlan.ts), the library's parse where that path leaves it the answer. */
function parsedInternational(text: string): ParsedPhone | undefined {
  const fast = parsedE164(text);
  return fast === undefined ? parsed(text) : (fast ?? undefined);
}

/** Digits read with a region: the national fast path (numberPlan.ts), the library's parse where it leaves the answer. */
function parsedInRegion(text: string, region: CountryCode): ParsedPhone | undefined {
  const fast = parsedNational(text, region);
  return fast === undefined ? parsed(text, region) : (fast ?? undefined);
}

/**
 * The number's type by the numbering plan (`MOBILE`, `FIXED_LINE`, …), or undefined when the number is not valid. With
 * the `max` metadata, libphonenumber's `isValid()` is exactly "getType() is defined" and each call matches the number
 * against every type's pattern again; the type is computed once per parsed number and remembered here, so validity and
 * type cost one matching (the per-new-identifier cost in ingest; benchmarks/stages.ts), with patterns compiled once
 * (numberPlan.ts).
 */
const typeOfParsed = new WeakMap<ParsedPhone, string | null>();
function validType(n: ParsedPhone | undefined): string | undefined {
  if (!n) return undefined;
  let t = typeOfParsed.get(n);
  if (t === undefined) {
    t = numberTypeOfParsed(n) ?? null;
    typeOfParsed.set(n, t);
  }
  return t ?? undefined;
}

/** The type of a number written `+digits` by the numbering plan (`MOBILE`, …), or undefined when it is not valid. */
export function typeOfInternational(e164: string): string | undefined {
  return validType(parsedInternational(e164));
}

function isValidNumber(n: ParsedPhone | undefined): n is ParsedPhone {
  return validType(n) !== undefined;
}

/** Mexico: mobile numbers used to carry a `1` after the country code (`+52 1 55…`); the plan has dropped it. */
function withoutMexicanMobileOne(n: ParsedPhone | undefined): ParsedPhone | undefined {
  // The cheap tests first: most numbers are not Mexican, and need no validity check here.
  if (!n || n.countryCallingCode !== '52' || !/^1\d{10}$/.test(n.nationalNumber) || validType(n) !== undefined) return n;
  const fixed = parsedInternational(`+52${n.nationalNumber.slice(1)}`);
  return isValidNumber(fixed) ? fixed : n;
}

/** A cleaned value in ASCII digits, a `tel:` URI read as the number it names. */
function telText(cleaned: string): string {
  const ascii = asciiDiallable(cleaned);
  return /^tel:/i.test(ascii) ? fromTelUri(ascii) : ascii;
}

/**
 * A phone number that cannot be read, flagged. An international number the metadata does not know (a range opened
 * after it, a test range) is kept as `+` and its digits: `+44 7700 900123` and `+44-7700-900123` are one token, and a
 * request in either spelling finds both. Only spaces, hyphens, dots and brackets are removed, which never changes which
 * number is meant; nothing is guessed (no country, trunk or exit code read, no letters dialled). A national or local
 * spelling (`07700 900123`, a `tel:` URI with a domain context) stays as given: the same digits in another country or
 * exchange are someone else's number.
 */
function unreadablePhone(cleaned: string, text = telText(cleaned)): NormalisedIdentifier {
  const written = text.replace(WRITTEN_SEPARATORS, '');
  return { type: 'msisdn', value: /^\+\d+$/.test(written) ? written : cleaned, valid: false, country: '' };
}

function phoneResult(n: ParsedPhone): NormalisedIdentifier {
  return { type: 'msisdn', value: n.number, valid: true, country: n.country ?? '', range: numberRangeOf(n), numberType: validType(n)?.toLowerCase() ?? '' };
}

/**
 * A phone number to E.164. Accepts `+60 12-345 6789`, `0060123456789`, `60123456789`, national `012-345 6789`,
 * `tel:+60-12-345-6789` and `tel:012-345-6789;phone-context=+60` (with `defaultCountry` MY): all give `+60123456789`.
 */
export function normalisePhone(raw: string, defaultCountry?: string | null): NormalisedIdentifier {
  const cleaned = cleanIdentifier(raw);
  let text = telText(cleaned);
  // Built only when the answer is no number: most are numbers.
  const written = text;
  const invalid = (): NormalisedIdentifier => unreadablePhone(cleaned, written);
  // Vanity numbers: letters dial as the keypad shows them, when the rest is a phone number.
  if (/[A-Za-z]/.test(text) && /\d/.test(text) && /^\+?[\dA-Za-z\s\-().\u00a0/]+$/.test(text)) text = text.toUpperCase().replace(/[A-Z]/g, (c) => KEYPAD[c]!);
  const compact = text.replace(NON_DIALLABLE, '');
  const region = defaultCountry ? defaultCountry.toUpperCase() : undefined;
  if (compact === '' || !/^\+?\d+$/.test(compact)) return invalid();

  if (compact.startsWith('+')) {
    const n = withoutMexicanMobileOne(parsedInternational(compact));
    return isValidNumber(n) ? phoneResult(n) : invalid();
  }
  if (!isCountryCode(region) || !planOf(region)) {
    // No region to read it by: `00` is the most common exit code, and bare digits may be international.
    const n = withoutMexicanMobileOne(parsedInternational(compact.startsWith('00') ? `+${compact.slice(2)}` : `+${compact}`));
    return isValidNumber(n) && (compact.startsWith('00') || compact.length >= 8) ? phoneResult(n) : invalid();
  }
  const plan = planOf(region)!;
  // Mexico's retired domestic prefixes (`01` long distance, `044`/`045` mobile) before a 10-digit number.
  const mexican = region === 'MX' ? /^(?:01|04[45])(\d{10})$/.exec(compact) : null;
  if (mexican) {
    const n = parsedInternational(`+52${mexican[1]}`);
    if (isValidNumber(n)) return phoneResult(n);
  }
  // `00` and the region's own calling code: the international prefix ITU-T recommends, as routing systems write it
  // whatever the region's own exit code (`0011` in AU, `011` in North America, `010` in JP). It comes first: where a
  // region's exit codes start with `00` and a digit (`0055` in BR, `005` in CO, `006` in TH and SG, `008` in KR),
  // reading them would turn `0066 63 851 8157` (TH) into another subscriber's +66 38 518 157. Only with the region's
  // own calling code: after an exit code the metadata does not know (`001` in ID), other digits could read as another
  // country's number, and that would hand one person's records to another's request.
  if (compact.startsWith(`00${plan.callingCode}`)) {
    const ituInternational = withoutMexicanMobileOne(parsedInternational(`+${compact.slice(2)}`));
    if (isValidNumber(ituInternational)) return phoneResult(ituInternational);
  }
  const national = withoutMexicanMobileOne(parsedInRegion(compact, region));
  // Read as international only where that can matter, and never from a leading 0 (no calling code starts with one):
  // libphonenumber answers an impossible number by throwing and catching an error, which cost more than the parse
  // itself for every national number (`0…`) a new subscriber arrives with (benchmarks/RESULTS.md, profile).
  const mayBeInternational = DIGITS.test(compact) && compact.length >= 8 && !compact.startsWith('0');
  let asInternational: ParsedPhone | undefined | null = null;
  const international = (): ParsedPhone | undefined =>
    asInternational !== null
      ? asInternational
      : (asInternational = mayBeInternational ? withoutMexicanMobileOne(parsedInternational(`+${compact}`)) : undefined);
  // The region's calling code without its trunk prefix in front: the international number, if it is one.
  if (compact.startsWith(plan.callingCode) && (!isValidNumber(national) || (plan.trunk !== undefined && !compact.startsWith(plan.trunk)))) {
    const n = international();
    if (isValidNumber(n)) return phoneResult(n);
  }
  if (isValidNumber(national)) return phoneResult(national);
  const n = international();
  if (isValidNumber(n)) return phoneResult(n);
  return invalid();
}

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;
/**
 * A local part: none of the characters that only a quoted local part may hold (quoted local parts, `"john doe"@…`, are
 * not read: kept as sent, flagged). Dots anywhere are allowed, as mail systems deliver to them: Japanese carriers' older
 * addresses have two in a row or one before the `@` (`taro..yamada.@docomo.ne.jp`, found in review: RFC 5321 refuses
 * them, and they are someone's).
 */
const LOCAL_PART = /^[^\s@",:;<>()[\]\\]+$/u;
/** A host name after IDNA: labels of 1-63 letters, digits and inner hyphens, at least two, the last not all digits. */
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?=[a-z0-9-]*[a-z])[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 5321's limit on a local part, in octets. */
const MAX_LOCAL_OCTETS = 64;

/**
 * Email: cleaned, `mailto:` and its query removed (and percent-decoded), Unicode NFC, lower-cased, trailing dots
 * of the domain removed, IDN domain to ASCII (punycode). `Jörg@Bücher.example` → `jörg@xn--bcher-kva.example`.
 */
export function normaliseEmail(raw: string): NormalisedIdentifier {
  let text = cleanIdentifier(raw);
  if (/^mailto:/i.test(text)) {
    text = text.slice(7).split('?')[0]!;
    try {
      text = decodeURIComponent(text);
    } catch {
      // keep it as written
    }
    text = cleanIdentifier(text);
  }
  const invalid = unreadableEmail(raw);
  // Full-width forms (`ａｌｉｃｅ＠example.com`, an East Asian keyboard's) are the same letters: read as ASCII, as a
  // full-width domain already was (found from outside: the local part gave another token, `＠` a flagged one).
  const lower = fullWidthAsAscii(text).normalize('NFC').toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at <= 0 || at === lower.length - 1 || !EMAIL_SHAPE.test(lower)) return invalid;
  const local = lower.slice(0, at);
  if (!LOCAL_PART.test(local) || Buffer.byteLength(local, 'utf8') > MAX_LOCAL_OCTETS) return invalid;
  const domainPart = lower.slice(at + 1).replace(/\.+$/, '');
  const domain = domainPart === '' ? '' : domainToASCII(domainPart);
  if (!DOMAIN.test(domain)) return invalid;
  return { type: 'email', value: `${local}@${domain}`, valid: true, country: '' };
}

/**
 * A person's number or address sent as a sender id or a shortcode (a long number declared `alphanumeric`, a reply-to
 * address) is still that person's identifier: it is tokenised as one, so that person's own request (data-subject
 * access, law enforcement, a legal hold) finds it. Only unambiguous shapes are read: an email address; a number
 * written internationally (`+…`, `00…`) that is valid; or bare digits (9 or more, longer than any shortcode) that
 * start with the destination country's calling code and that this country's own rules (as for an msisdn sender) read
 * as exactly that international number — a peer that dropped the `+` of a local long number. Other bare digits are
 * not read: a national number written without its country code is often also a valid number of another country
 * (`2015550123`, a US number, reads as Egypt's `+20…`), which would hand one person's records to another's request.
 * A national form is never read: the sender's region is unknown.
 */
function personalIdentifierIn(cleaned: string, destination: string | null | undefined): NormalisedIdentifier | null {
  if (hasAt(cleaned)) {
    const email = normaliseEmail(cleaned);
    return email.valid ? email : null;
  }
  const compact = dialString(cleaned);
  if (/^(?:\+\d{6,15}|00\d{6,15})$/.test(compact)) {
    const phone = normalisePhone(compact, null);
    return phone.valid ? phone : null;
  }
  const region = destination ? destination.toUpperCase() : '';
  const plan = isCountryCode(region) ? planOf(region) : null;
  if (plan === null || !/^[1-9]\d{8,14}$/.test(compact) || !compact.startsWith(plan.callingCode)) return null;
  // Read by the destination's own rules (as an msisdn sender would be), and kept only as the international number:
  // where the digits are also a valid national number (no trunk prefix, as in Italy), that reading wins there, and
  // here the digits stay a sender id.
  const phone = normalisePhone(compact, region);
  return phone.valid && phone.value === `+${compact}` ? phone : null;
}

/**
 * Alphanumeric sender ids are cleaned (case kept: it is what recipients see); shortcodes are digits, per country
 * (the same digits are different services in different countries). Either, when it is a person's number or address,
 * is that person's identifier (`personalIdentifierIn`).
 */
export function normaliseOther(raw: string, type: IdentifierType, defaultCountry?: string | null): NormalisedIdentifier {
  const cleaned = cleanIdentifier(raw);
  if (type === 'alphanumeric' || type === 'shortcode') {
    const person = personalIdentifierIn(cleaned, defaultCountry);
    if (person) return person;
  }
  if (type === 'shortcode') {
    const digits = dialString(cleaned);
    // Longer than any shortcode, a number: someone's, written in a form that cannot be read here (national, or a range
    // the metadata does not know). Kept as an msisdn would be, flagged, so that the holder's request reaches it
    // (`identifier.as_sent`); as a flagged shortcode no request could (found from outside). Not where the digits read
    // as a valid number without a country (`447911123456`): a request would be read as that number, never reach this
    // spelling, and taking it for that number is what personalIdentifierIn refuses.
    if (/^\+?\d{9,}$/.test(digits) && !normalisePhone(cleaned, null).valid) return unreadablePhone(cleaned);
    const valid = DIGITS.test(digits) && digits.length >= 3 && digits.length <= 8;
    const country = defaultCountry && isCountryCode(defaultCountry.toUpperCase()) ? defaultCountry.toUpperCase() : '';
    return { type, value: valid && country ? `${country}:${digits}` : valid ? digits : cleaned, valid, country: valid ? country : '' };
  }
  return { type, value: cleaned, valid: cleaned.length > 0, country: '' };
}

const SIP_URI = /^sips?:/i;

/** Written as an address (an `@`), and not a `sip:` URI, whose user part may be a number. */
function addressShaped(raw: string): boolean {
  return hasAt(raw) && !SIP_URI.test(cleanIdentifier(raw));
}

/**
 * An identifier under the type it was given — except that a person's address declared a number, or a person's number
 * declared an address, is that person's (as a sender id is, `personalIdentifierIn`): an `msisdn` with a valid address
 * in it is the email (a `sip:` URI is not); an `email` without `@` that is a number written internationally (or with
 * the destination's calling code) is the msisdn. Read as declared they were flagged invalid and hidden from their
 * holder's own requests (found from outside with a librdkafka producer).
 */
export function normaliseIdentifier(raw: string, type: IdentifierType, defaultCountry?: string | null): NormalisedIdentifier {
  switch (type) {
    case 'msisdn': {
      if (addressShaped(raw)) {
        const email = normaliseEmail(raw);
        if (email.valid) return email;
      }
      return normalisePhone(raw, defaultCountry);
    }
    case 'email': {
      const email = normaliseEmail(raw);
      if (email.valid || hasAt(raw)) return email;
      return personalIdentifierIn(cleanIdentifier(raw), defaultCountry) ?? email;
    }
    default:
      return normaliseOther(raw, type, defaultCountry);
  }
}

/**
 * The type of a recipient, which schema v1 does not carry: an address (`@`) → email, push → device token ("other"),
 * on the email channel a valid phone number → msisdn and anything else → email,
 * a short all-digit number → shortcode, else a phone number. Except: a message to a subscriber (`mt`) whose short
 * digits are a valid mobile number of the destination country is to that subscriber — where whole numbering plans are five or
 * six digits long (Ascension, Cook Islands, Falklands, St Helena, Wallis and Futuna, Norfolk Island, Andorra, the
 * Faroes, Greenland…), a national-format number is as short as a shortcode, and read as one it would be hidden from
 * that person's own requests. An `mo` message's short recipient stays the service's shortcode.
 */
export function recipientTypeOf(channel: string, recipient: string, direction?: string, destination?: string | null): IdentifierType {
  if (channel === 'push') return 'other';
  // The channel is only a default: an address is an address, a number a number, whatever the channel (an SMS to an
  // email gateway, an email-to-SMS relay). Read under the channel's type they would be hidden from their holder's
  // own requests. A `sip:` URI is neither (its user part is not read).
  if (channel === 'email') return hasAt(recipient) || !normalisePhone(recipient, destination ?? null).valid ? 'email' : 'msisdn';
  if (addressShaped(recipient)) return 'email';
  const compact = dialString(cleanIdentifier(recipient));
  if (DIGITS.test(compact) && compact.length <= 6) {
    if (direction !== 'mt' || !destination) return 'shortcode';
    // Only a number a message can reach a subscriber at: in Germany, Finland, Luxembourg, Austria or Jersey most short
    // digit strings are also fixed-line or service numbers by the plan, and a shortcode must not become their holder's.
    const n = normalisePhone(compact, destination);
    return n.valid && (n.numberType === 'mobile' || n.numberType === 'fixed_line_or_mobile') ? 'msisdn' : 'shortcode';
  }
  return 'msisdn';
}

/** A bounded cache in front of normalisation; Map keeps insertion order, so eviction is oldest-first. */
export class IdentifierNormaliser {
  private readonly cache = new Map<string, NormalisedIdentifier>();
  constructor(private readonly capacity = 200_000) {}

  normalise(raw: string, type: IdentifierType, defaultCountry?: string | null): NormalisedIdentifier {
    const key = `${type}\u0000${defaultCountry ?? ''}\u0000${raw}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const result = normaliseIdentifier(raw, type, defaultCountry);
    if (this.cache.size >= this.capacity) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, result);
    return result;
  }

  get size(): number {
    return this.cache.size;
  }
}
