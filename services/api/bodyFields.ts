import { alignmentDistance, quotedValue } from '../core/index.ts';

/**
 * Fields of a request body that the route does not read (ADR 0041). The brief's shapes say "more fields are welcome,
 * these must be there": a body may carry fields of its own (a caller's note, a field copied from another request's
 * body) and is answered as if they were not there. They are removed before the handler runs, so nothing unread is
 * stored, audited or signed.
 *
 * A field that looks meant as one the route reads but does not find is refused instead: read as welcome,
 * `{"confidental": true}` or `{"identifier": {…, "confidential": true}}` would disclose a confidential request to the
 * data subject, and `{"form": …}` would answer another range — each silently. "Looks meant" (`meantFields`): a
 * misspelling, another spelling or another name of a field absent from its object, or an optional field of another
 * object of the body (misplaced); for `confidential`, any name that speaks of secrecy.
 *
 * Only objects whose schema opts in (`additionalProperties: true` with `properties`) are treated so. A strict one
 * (`additionalProperties: false`: billing's close and re-rate) refuses any other field, naming it and the field it
 * likely meant. The retention pass (route config `strictUnless: 'dry_run'`) welcomes other fields only when the body
 * says `dry_run` itself: without it the pass is real, and an unread `dryRun` must not make it so.
 */

/** The part of a JSON schema this module reads. */
export interface ObjectSchema {
  readonly type?: unknown;
  readonly additionalProperties?: unknown;
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly required?: readonly string[];
}

/** A body may carry this many fields its route does not read; more is a 400 (each one is compared with the fields). */
export const MAX_UNREAD_FIELDS = 64;

/** Other names a caller may give a field, normalised (lower case, letters and digits only). */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  from: [
    'start',
    'since',
    'begin',
    'after',
    'startdate',
    'fromdate',
    'datefrom',
    'starttime',
    'fromtime',
    'timefrom',
    'startat',
    'fromts',
    'startts',
    'fromdatetime',
    'startdatetime',
    'periodstart',
    'rangefrom',
    'rangestart',
  ],
  to: [
    'end',
    'until',
    'till',
    'upto',
    'through',
    'before',
    'enddate',
    'todate',
    'dateto',
    'endtime',
    'totime',
    'timeto',
    'endat',
    'tots',
    'endts',
    'todatetime',
    'enddatetime',
    'periodend',
    'rangeto',
    'rangeend',
  ],
  country: ['region', 'countrycode', 'cc', 'iso', 'defaultregion', 'defaultcountry'],
  reason: ['justification', 'grounds', 'why'],
  case_reference: ['case', 'caseref', 'caseid', 'casenumber', 'reference', 'ref', 'warrant'],
  legal_basis: ['basis', 'legalground', 'legalgrounds', 'law', 'statute'],
  as_sent: ['verbatim', 'raw', 'exact', 'literal', 'assent', 'sentas', 'asis'],
  dry_run: ['dry', 'simulate', 'simulation', 'preview', 'whatif', 'test', 'plan'],
  now: ['at', 'asof', 'asat', 'time', 'clock', 'instant', 'date', 'when'],
};

/** Names that speak of keeping a request from its subject: never dropped while `confidential` itself is absent. */
const SECRECY_STEMS = [
  'confiden',
  'secre',
  'disclos',
  'gag',
  'seal',
  'classif',
  'restrict',
  'covert',
  'privat',
  'sensitiv',
  'hidden',
  'hide',
  'embargo',
  'tipoff',
  // Found from outside (2026-12-06): each of these was welcome, and the request went to its subject's export.
  'tipping',
  'conceal',
  'discre',
  'incamera',
  'judice',
  'quiet',
  'anonym',
  // And their kin: keeping it back, not telling or notifying the subject (not `notification_email` or `information`).
  'silen',
  'hush',
  'stealth',
  'clandestin',
  'withh',
  'suppress',
  'nottell',
  'notinform',
  'noinform',
  'informsubject',
  'notnotif',
  'nonotif',
  'notifysubject',
  'notifythesubject',
  'subjectnotif',
  'eyesonly',
  'needtoknow',
];

const normalised = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** What, after a field's name, makes another field of it (`authority_id`, `case_reference_no`, `identifier2`). */
const SUFFIXES = new Set([
  'id',
  'ids',
  'ref',
  'refs',
  'no',
  'num',
  'number',
  'code',
  'name',
  'type',
  'kind',
  'label',
  'text',
  'note',
  'notes',
  'url',
  'uri',
  'key',
  'hash',
  'version',
]);

/** `name` is `field` with something after it (`authority_id`, `identifier2`, `caseReferenceId`): another field. */
function extends_(n: string, field: string): boolean {
  if (n.length <= field.length || !n.startsWith(field)) return false;
  const rest = n.slice(field.length);
  return /^\d+$/.test(rest) || SUFFIXES.has(rest);
}

/** Whether `name` is a slip of `field` (one or two edits by length; for a two-letter field, a swap or one letter more). */
function slipOf(n: string, target: string): boolean {
  if (target.length <= 2) {
    if (n.length === 2) return n === `${target[1]}${target[0]}`;
    return n.length === 3 && n !== target && new RegExp(`^.?${target[0]}.?${target[1]}.?$`).test(n);
  }
  const allowed = Math.max(n.length, target.length) >= 8 ? 2 : Math.min(n.length, target.length) >= 3 ? 1 : 0;
  // The distance is at least the difference in length: a long name is not compared letter by letter.
  if (Math.abs(n.length - target.length) > allowed) return false;
  return alignmentDistance(n, target) <= allowed;
}

/**
 * The fields of `known` that `name` looks meant as: the same letters in another case or with other separators
 * (`dryRun`, `Case-Reference`), a known other name (`start` for `from`), a slip (one edit for names of 3 to 7
 * letters, two from 8; for a two-letter name a swap or one letter more: `ot`, `too`), and for `confidential` any
 * name that speaks of secrecy (`confidentiality`, `gag_order`, `do_not_disclose`). A name that is a field with
 * something after it (`authority_id`) is another field. Empty when nothing is that close; two or more when two are.
 */
export function meantFields(name: string, known: readonly string[]): string[] {
  const n = normalised(name);
  if (n === '') return [];
  const exact = known.filter((k) => normalised(k) === n || (Object.hasOwn(ALIASES, k) && ALIASES[k]!.includes(n)));
  if (exact.length > 0) return exact;
  const out: string[] = [];
  for (const k of known) {
    if (k === 'confidential' && SECRECY_STEMS.some((stem) => n.includes(stem))) out.push(k);
    else if (!extends_(n, normalised(k)) && slipOf(n, normalised(k))) out.push(k);
  }
  return out;
}

/** `meantFields` when exactly one field is meant (for callers that want one answer). */
export function meantField(name: string, known: readonly string[]): string | undefined {
  const fields = meantFields(name, known);
  return fields.length === 1 ? fields[0] : undefined;
}

const quotedName = (name: string): string => {
  const q = quotedValue(name);
  return q === 'the value' ? 'a field name' : q;
};
const listed = (names: readonly string[]): string => names.map((k) => `"${k}"`).join(' or ');

interface Place {
  readonly at: string;
  readonly schema: ObjectSchema;
  readonly record: Record<string, unknown>;
}

/** The body's objects the schema describes, with where each is (`body`, `body.identifier`). */
function placesOf(body: unknown, schema: ObjectSchema | undefined, at: string, out: Place[]): Place[] {
  if (!schema?.properties || typeof body !== 'object' || body === null || Array.isArray(body)) return out;
  const record = body as Record<string, unknown>;
  out.push({ at, schema, record });
  for (const [name, inner] of Object.entries(schema.properties)) {
    if (inner && typeof inner === 'object' && Object.hasOwn(record, name)) placesOf(record[name], inner, `${at}.${name}`, out);
  }
  return out;
}

/** How many names inside one unread field are compared with the body's fields (a caller's note may be large). */
const MAX_NAMES_INSIDE = 1_000;

/**
 * The first name inside an unread field's value (objects and arrays, depth first) that looks meant as one of
 * `optional` (fields the body lacks), with its path; undefined when none among the first MAX_NAMES_INSIDE names.
 */
function meantInside(value: unknown, optional: readonly { readonly at: string; readonly k: string }[]): { path: string[]; meant: string[] } | undefined {
  if (optional.length === 0 || value === null || typeof value !== 'object') return undefined;
  let budget = MAX_NAMES_INSIDE;
  const walk = (v: unknown, path: string[], depth: number): { path: string[]; meant: string[] } | undefined => {
    if (v === null || typeof v !== 'object' || depth > 32) return undefined;
    const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    for (const [k, inner] of entries) {
      if (!Array.isArray(v)) {
        if (--budget < 0) return undefined;
        const meant = optional.filter((o) => meantFields(k, [o.k]).length > 0).map((o) => `${o.at}.${o.k}`);
        if (meant.length > 0) return { path: [...path, k], meant };
      }
      const found = walk(inner, [...path, k], depth + 1);
      if (found || budget < 0) return found;
    }
    return undefined;
  };
  return walk(value, [], 0);
}

/**
 * Removes from `body` (in place) the fields of opted-in objects that the schema does not name, at any depth the
 * schema describes. Returns the refusal's message, with the body left as it was sent, when one of them looks meant
 * as a field the body lacks, when there are more than MAX_UNREAD_FIELDS, or when an object that takes no other fields
 * has one (`additionalProperties: false`, or the route's `strictUnless` field absent); undefined otherwise.
 */
export function dropUnreadFields(body: unknown, schema: ObjectSchema | undefined, options: { readonly strictUnless?: string } = {}): string | undefined {
  const places = placesOf(body, schema, 'body', []);
  // Optional fields of every object, for a field sent in the wrong one (`confidential` inside `identifier`).
  const optional = places.flatMap((p) =>
    Object.keys(p.schema.properties!)
      .filter((k) => !(p.schema.required ?? []).includes(k) && !Object.hasOwn(p.record, k))
      .map((k) => ({ at: p.at, k })),
  );
  const unread: { place: Place; name: string }[] = [];
  for (const place of places) {
    const { at, schema: s, record } = place;
    const welcoming = s.additionalProperties === true && !(at === 'body' && options.strictUnless !== undefined && !Object.hasOwn(record, options.strictUnless));
    if (!welcoming && s.additionalProperties !== false && s.additionalProperties !== true) continue;
    const known = Object.keys(s.properties!);
    const absent = known.filter((k) => !Object.hasOwn(record, k));
    for (const name of Object.keys(record)) {
      if (Object.hasOwn(s.properties!, name)) continue;
      const meant = meantFields(name, welcoming ? absent : known);
      if (!welcoming) {
        const why = options.strictUnless && s.additionalProperties === true ? `without "${options.strictUnless}" it takes ` : 'it takes ';
        return `${at}: ${quotedName(name)} is not a field of this request${meant.length > 0 ? `: did you mean ${listed(meant)}?` : ''} (${why}${known.map((k) => `"${k}"`).join(', ')} only)`;
      }
      if (meant.length > 0) {
        return `${at}: ${quotedName(name)} is not a field of this request: did you mean ${listed(meant)}? (fields a request does not read are ignored; one that looks meant as a field it reads is refused, so that a typo never changes an answer unnoticed)`;
      }
      const elsewhere = optional.filter((o) => o.at !== at && meantFields(name, [o.k]).length > 0).map((o) => `${o.at}.${o.k}`);
      if (elsewhere.length > 0) return `${at}: ${quotedName(name)} is not a field here: did you mean ${listed(elsewhere)}?`;
      // Inside an object the schema does not describe (`"options": {"confidential": true}`): a name meant as
      // `confidential`, which the body lacks, would be dropped with it (found from outside: the request went to its
      // subject's export). Only secrecy is looked for there: `"officer": {"country": "FR"}` is the caller's own.
      const nested = meantInside(
        record[name],
        optional.filter((o) => o.k === 'confidential'),
      );
      if (nested) {
        return `${at}: ${quotedName(name)} holds ${quotedName(nested.path[nested.path.length - 1]!)}, which is not read there: did you mean ${listed(nested.meant)}? (a field a request does not read is ignored with all it holds)`;
      }
      unread.push({ place, name });
      if (unread.length > MAX_UNREAD_FIELDS)
        return `body: more than ${MAX_UNREAD_FIELDS} fields this request does not read (they are welcome, but not without end): send the request's own fields`;
    }
  }
  for (const { place, name } of unread) delete place.record[name];
  return undefined;
}
