import { domainToASCII } from 'node:url';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Identifier normalisation: one person, one normal form, one token. Pure functions; the parse cost of
 * libphonenumber-js (~10 µs) is why `IdentifierNormaliser` keeps a bounded cache of recent inputs.
 */

export type IdentifierType = 'msisdn' | 'email' | 'alphanumeric' | 'shortcode' | 'other';

export interface NormalisedIdentifier {
  readonly type: IdentifierType;
  /** E.164 for phone numbers, lower-case ASCII for emails, trimmed input otherwise. */
  readonly value: string;
  /** False when the input could not be parsed: it is then tokenised as given (trimmed) and flagged. */
  readonly valid: boolean;
  /** ISO country of a phone number, when known. Not an identifier. */
  readonly country: string;
}

const NON_DIALLABLE = /[\s\-().\u00a0/]/g;
const DIGITS = /^\d+$/;

function isCountryCode(c: string | null | undefined): c is CountryCode {
  return typeof c === 'string' && /^[A-Z]{2}$/.test(c);
}

/**
 * A phone number to E.164. Accepts `+60 12-345 6789`, `0060123456789`, `60123456789` and national
 * `012-345 6789` (with `defaultCountry` MY): all give `+60123456789`.
 */
export function normalisePhone(raw: string, defaultCountry?: string | null): NormalisedIdentifier {
  const trimmed = raw.trim();
  let compact = trimmed.replace(NON_DIALLABLE, '');
  if (compact.startsWith('00')) compact = `+${compact.slice(2)}`;
  const region = defaultCountry ? defaultCountry.toUpperCase() : undefined;
  const candidates: string[] = [compact];
  // Bare digits may be an international number without its "+": try that second.
  if (DIGITS.test(compact) && compact.length >= 8) candidates.push(`+${compact}`);
  for (const candidate of candidates) {
    const parsed =
      candidate.startsWith('+') || !isCountryCode(region)
        ? parsePhoneNumberFromString(candidate.startsWith('+') ? candidate : `+${candidate}`)
        : parsePhoneNumberFromString(candidate, region);
    if (parsed && parsed.isValid()) {
      return { type: 'msisdn', value: parsed.number, valid: true, country: parsed.country ?? '' };
    }
  }
  return { type: 'msisdn', value: trimmed, valid: false, country: '' };
}

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;

/** Email: trimmed, lower-cased, IDN domain to ASCII (punycode). `Jörg@Bücher.example` → `jörg@xn--bcher-kva.example`. */
export function normaliseEmail(raw: string): NormalisedIdentifier {
  const trimmed = raw.trim();
  const lower = trimmed.toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at <= 0 || at === lower.length - 1 || !EMAIL_SHAPE.test(lower)) {
    return { type: 'email', value: trimmed, valid: false, country: '' };
  }
  const domain = domainToASCII(lower.slice(at + 1));
  if (domain === '') return { type: 'email', value: trimmed, valid: false, country: '' };
  return { type: 'email', value: `${lower.slice(0, at)}@${domain}`, valid: true, country: '' };
}

/** Alphanumeric sender ids and shortcodes are not parsed; they are trimmed (shortcodes: digits only). */
export function normaliseOther(raw: string, type: IdentifierType): NormalisedIdentifier {
  const trimmed = raw.trim();
  if (type === 'shortcode') {
    const digits = trimmed.replace(NON_DIALLABLE, '');
    return { type, value: digits, valid: DIGITS.test(digits) && digits.length <= 8, country: '' };
  }
  return { type, value: trimmed, valid: trimmed.length > 0, country: '' };
}

export function normaliseIdentifier(raw: string, type: IdentifierType, defaultCountry?: string | null): NormalisedIdentifier {
  switch (type) {
    case 'msisdn':
      return normalisePhone(raw, defaultCountry);
    case 'email':
      return normaliseEmail(raw);
    default:
      return normaliseOther(raw, type);
  }
}

/**
 * The type of a recipient, which schema v1 does not carry: email channel → email, push → device
 * token ("other"), a short all-digit number → shortcode, else a phone number.
 */
export function recipientTypeOf(channel: string, recipient: string): IdentifierType {
  if (channel === 'email') return 'email';
  if (channel === 'push') return 'other';
  const compact = recipient.trim().replace(NON_DIALLABLE, '');
  if (DIGITS.test(compact) && compact.length <= 6) return 'shortcode';
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
