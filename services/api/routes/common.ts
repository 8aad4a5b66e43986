import type { FastifyRequest } from 'fastify';
import {
  COUNTRY_CODES,
  identifierInText,
  PipelineError,
  isoInstantProblem,
  keptAsSent,
  normaliseIdentifier,
  parseIsoInstant,
  quotedValue,
  type NormalisedIdentifier,
} from '../../core/index.ts';
import { latestRangeEnd, MAX_DISCLOSURE_MONTHS } from '../disclosure/disclosureDesk.ts';

/**
 * What the disclosure routes share: the identifier and range in request bodies, checked the same way everywhere
 * (a 400 that names the field, never a 500), and normalised exactly as ingest normalises.
 */
export interface IdentifierBody {
  type: 'msisdn' | 'email';
  value: string;
  country?: string;
  /** Look the spelling up as ingest kept it when it could not read it (flagged), rather than refuse it. */
  as_sent?: boolean;
}

export const identifierSchema = {
  type: 'object',
  // Fields it does not read are welcome and ignored; a misspelt one is refused (services/api/bodyFields.ts).
  additionalProperties: true,
  required: ['type', 'value'],
  properties: {
    type: { type: 'string', enum: ['msisdn', 'email'] },
    value: { type: 'string', minLength: 1, maxLength: 320 },
    country: { type: 'string', pattern: '^[A-Za-z]{2}$', description: 'default region (ISO 3166-1 alpha-2) for a national-format number' },
    as_sent: {
      type: 'boolean',
      description:
        'looks the value up as ingest keeps what it cannot read (cleaned, flagged), instead of refusing it: the records whose identifier could not be read and carried exactly this spelling, whatever their country (country is not used)',
    },
  },
} as const;

/**
 * Free text a person writes (authority, case reference, legal basis, reason): at least one visible character — not
 * whitespace, a combining mark or an invisible format character (zero-width space, joiners) — and no control
 * characters but tab and line breaks, nor the bidirectional embeddings, overrides and isolates that make people read
 * a signed text in another order than it is stored ("Trojan Source"). It is signed, audited and shown to people, where
 * a NUL, an ANSI escape or a reordering has no business. (Found from outside: a zero-width-only authority passed.)
 */
export const FREE_TEXT_PATTERN =
  '^(?=[\\s\\S]*[^\\s\\p{M}\\p{Cf}])[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]*$';
export const FREE_TEXT_RULE = 'text with a visible character and no control characters';

/**
 * The ajv format every free-text field carries with FREE_TEXT_PATTERN (`freeText`): no email address or number written
 * internationally in it. Free text is kept with the audit trail for 36 months and with a hold until it is purged,
 * identifiers 12 months under their month's key — the subject goes in `identifier`, where it is tokenised (found from
 * outside: `"case_reference": "re +60 12-345 6789"` was stored in clear). A format rather than a check in each route,
 * so a free-text field added later cannot have the pattern without it (a test walks every route's schema).
 */
export const FREE_TEXT_FORMAT = 'free-text';
export const freeTextFormat = { type: 'string', validate: (text: string): boolean => !identifierInText(text) } as const;
/** What a 400 says of a free-text field that fails `FREE_TEXT_FORMAT` (after the field's name); never quotes it. */
export const IDENTIFIER_IN_FREE_TEXT =
  'holds what looks like a phone number or an email address; free text is kept in the audit trail for 36 months, identifiers only 12: name the subject in "identifier" only (a reference of 10 or more bare digits can read as a mobile number: write it with a prefix or separators, e.g. CASE-2026-…)';

/** A free-text field's schema: 1 to `max` characters of FREE_TEXT_PATTERN, with no identifier (FREE_TEXT_FORMAT). */
export function freeText(max: number, description?: string) {
  return {
    type: 'string',
    minLength: 1,
    maxLength: max,
    pattern: FREE_TEXT_PATTERN,
    format: FREE_TEXT_FORMAT,
    ...(description === undefined ? {} : { description }),
  } as const;
}

export const isoString = { type: 'string', minLength: 1, maxLength: 64, description: 'ISO 8601 instant with a zone (Z or ±hh:mm)' } as const;

export const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

/** A phone number's shape: digits and the usual separators, after cleaning. */
const NUMBER_SHAPED = /^\+?[\d\s\-().]+$/;

/**
 * The identifier of a body, normalised exactly as ingest does; a 400 naming the problem when it is not one. A number
 * the numbering-plan metadata does not know (a new range, a test range) but that is a number — digits only — is
 * looked up as ingest stored it (cleaned, flagged invalid), so nothing ingest kept is out of reach. Any other value
 * ingest could not read (a national number of an unknown range, `alice＠example.com`, a display name with an address)
 * was kept flagged under its spelling as sent: `as_sent: true` looks exactly that spelling up, where a request without
 * it is refused, since a typo would otherwise be answered "no records" (found from outside: such records were stored
 * 13 months and no request could reach them).
 */
export function subjectOf(body: IdentifierBody): NormalisedIdentifier {
  // Checked whatever the number's form (found from outside: "XX" was refused for a national number only).
  if (body.country !== undefined && !COUNTRY_CODES.has(body.country.toUpperCase()))
    throw new PipelineError('bad_request', `identifier.country: ${body.country} is not an ISO 3166-1 alpha-2 country code`);
  const id = normaliseIdentifier(body.value, body.type, body.country?.toUpperCase());
  // Ingest reads a person's number declared an address (or the reverse) as what it is; a request is taken as written:
  // a law-enforcement request or a hold names what it was authorised for, so another type is a 400, not a silent swap.
  if (id.valid && id.type !== body.type)
    throw new PipelineError(
      'bad_request',
      `identifier.type is '${body.type}' but identifier.value is ${id.type === 'email' ? 'an email address' : 'a phone number'}: send it with type '${id.type}'`,
    );
  // As sent: the spelling as ingest keeps what it cannot read, whatever the country (such a spelling has none; read
  // under the country given, a national spelling would become a number, which is the request without as_sent).
  if (body.as_sent === true) {
    const kept = keptAsSent(body.value, body.type);
    if (kept.value === '') throw new PipelineError('bad_request', 'identifier.value: nothing is left of it once control and invisible characters are removed');
    return kept;
  }
  if (id.valid) return id;
  const asSent = '; to look up the records that carried exactly this spelling (kept flagged, as sent), send identifier.as_sent: true';
  if (body.type === 'msisdn') {
    const digits = id.value.replace(/\D/g, '').length;
    // Up to what ingest accepts (320 characters), not E.164's 15 digits: ingest keeps a longer `+digits` as sent, and
    // its holder's request must reach it (found from outside: a 16-digit number was stored and could not be asked for).
    if (NUMBER_SHAPED.test(id.value) && digits >= 5 && id.value.length <= 320 && (id.value.startsWith('+') || id.value.startsWith('00'))) return id;
    // Found from outside: `+60123456789x` was told to give a country, which would not have helped.
    // Digits of any script are digits (`+९१ …` is refused for what it is, not for its characters).
    const odd = /[^\p{Nd}\s+().\-/\uff0b]/u.test(body.value.trim().replace(/^tel:/i, ''));
    const international = /^\s*(tel:)?\s*(\+|00)/i.test(body.value);
    throw new PipelineError(
      'bad_request',
      (odd
        ? 'identifier.value: not a valid phone number: it holds characters no phone number has (digits, spaces, + ( ) . - / only)'
        : body.country
          ? `identifier.value: not a valid phone number of ${body.country.toUpperCase()} (read as a national number there), nor an international one (+ or 00 and the country code)`
          : international
            ? 'identifier.value: not a valid international phone number (+ or 00, the country code, then the number)'
            : 'identifier.value: not a valid phone number; a national-format number needs identifier.country') + asSent,
    );
  }
  throw new PipelineError('bad_request', `identifier.value: not a valid email address${asSent}`);
}

/** What an audit entry's detail says of a lookup in the unreadable (flagged) form of an identifier. */
export const FLAGGED_LOOKUP = 'identifier looked up in its unreadable (flagged) form';

/** A 404's message for an id no request or export has: the id quoted only when it cannot be an identifier. */
export function unknownId(what: string, id: string): string {
  const quoted = quotedValue(id);
  return quoted === 'the value' ? `no ${what} has the id given` : `no ${what} ${quoted}`;
}

/** An ISO instant of a body field, or a 400 naming it. */
export function instantOf(field: string, text: string): number {
  const at = parseIsoInstant(text);
  if (at === undefined) throw new PipelineError('bad_request', isoInstantProblem(field, text));
  return at;
}

/** [from, to): "to" after "from", and (for disclosures) at most MAX_DISCLOSURE_MONTHS long. */
export function rangeOf(fromText: string, toText: string, opts: { windowBound: boolean }): { from: number; to: number } {
  const from = instantOf('from', fromText);
  const to = instantOf('to', toText);
  if (!(to > from)) {
    // Said as read when reading moved an instant (a finer fraction rounded up; found from outside: "to" …00.124Z was
    // "not after" from …00.1231Z, which reads as …00.124Z).
    const read = new Date(from).toISOString() !== fromText || new Date(to).toISOString() !== toText;
    throw new PipelineError(
      'bad_request',
      `range: "to" (${toText}) must be after "from" (${fromText})${read ? `; read to the millisecond, from ${new Date(from).toISOString()} and to ${new Date(to).toISOString()}` : ''}`,
    );
  }
  if (opts.windowBound && to > latestRangeEnd(from)) {
    throw new PipelineError(
      'bad_request',
      `range: longer than ${MAX_DISCLOSURE_MONTHS / 12} years (nothing is kept that long: traffic 10 years, identifiers 12 months after the end of their month)`,
    );
  }
  return { from, to };
}

/** Details a route adds to its audit entry (the hook writes it when the response goes out). */
export interface AuditDetail {
  action?: string;
  subject?: NormalisedIdentifier;
  authority?: string;
  caseReference?: string;
  legalBasis?: string;
  requestId?: string;
  rows?: number;
  confidential?: boolean;
  detail?: string;
  /** The route wrote its own entries (streamed answers): the hook writes none. */
  self?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditDetail?: AuditDetail;
    /** The template of a known path asked with a method it does not have (a 405): audited and counted under it. */
    knownRoute?: string;
  }
}

export function audited(req: FastifyRequest, detail: AuditDetail): void {
  req.auditDetail = { ...(req.auditDetail ?? {}), ...detail };
}
