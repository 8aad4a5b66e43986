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

/**
 * Words that speak of keeping a request from its subject: a name with a part (snake_case, kebab-case and camelCase
 * pieces) that starts with one of these is meant as `confidential`, never dropped while `confidential` itself is
 * absent. Parts, not substrings: `without_prejudice`, `discrepancy`, `secretary` and `mortgage` are no secrecy (found in
 * review), `sub_judice`, `discreet`, `secret` and `gag_order` are.
 */
const SECRECY_PART_PREFIXES = [
  'confiden',
  'secret',
  'secrecy',
  'disclos',
  'nondisclos',
  'gag',
  'seal',
  'classif',
  'restrict',
  'covert',
  'undercover',
  'privat',
  'sensitiv',
  'hidden',
  'hide',
  'embargo',
  'conceal',
  'discreet',
  'discretion',
  'quiet',
  'anonym',
  'silen',
  'hush',
  'stealth',
  'clandestin',
  'withh',
  'suppress',
  'tipoff',
];
/** Parts that start with a secrecy prefix but are not secrecy. */
const NOT_SECRECY_PARTS = /^(?:secretar|sealant)/;
/** Secrecy written as several words, looked for in the name without separators (`tipping_off`, `in camera`, `eyes_only`). */
const SECRECY_PHRASES = ['tipoff', 'tippingoff', 'incamera', 'subjudice', 'eyesonly', 'needtoknow', 'nottell', 'donttell'];
/** Telling the subject: secrecy when the name is about the subject (`notify_subject`) or only says not to (`do_not_inform`). */
const TELLING = /^(?:notif|inform$|tell$|alert$|warn$)/;
const ABOUT_SUBJECT = /^(?:subject|subjects|target|person|individual|holder|datasubject)$/;
const ONLY_NEGATION = /^(?:do|dont|not|no|never)$/;

/** The name's parts, lower case: `doNotNotify_subject` → do, not, notify, subject. */
function nameParts(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((p) => p !== '');
}

/** Whether a name (or a one-word value) speaks of keeping a request from its subject. */
export function speaksOfSecrecy(name: string): boolean {
  const parts = nameParts(name);
  if (parts.some((p) => SECRECY_PART_PREFIXES.some((stem) => p.startsWith(stem)) && !NOT_SECRECY_PARTS.test(p))) return true;
  const joined = parts.join('');
  if (SECRECY_PHRASES.some((phrase) => joined.includes(phrase))) return true;
  if (parts.some((p) => TELLING.test(p))) return parts.some((p) => ABOUT_SUBJECT.test(p)) || parts.every((p) => TELLING.test(p) || ONLY_NEGATION.test(p));
  return false;
}

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
    if (k === 'confidential' && speaksOfSecrecy(name)) out.push(k);
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

/** How many names and values inside one unread field are looked at (a caller's note may be large), and how deep. */
const MAX_INSIDE = 1_000;
const MAX_DEPTH_INSIDE = 32;

type SecrecyInside = { readonly found: 'name' | 'value'; readonly word: string } | { readonly found: 'too_large' };

/**
 * Where an unread field's value (itself, or objects and arrays in it, depth first) speaks of secrecy: a name meant as
 * `confidential` (`"options": {"confidential": true}`), or a one-word string value (`"tags": ["confidential"]`,
 * `"handling": "secret"`; a sentence is a note, not a flag). `too_large` past MAX_INSIDE names and values or
 * MAX_DEPTH_INSIDE levels: not looked through, refused rather than dropped — confidentiality is not lost to a size.
 */
function secrecyInside(value: unknown): SecrecyInside | undefined {
  let budget = MAX_INSIDE;
  const oneWordOfSecrecy = (v: unknown): v is string => typeof v === 'string' && v.length <= 40 && !/\s/.test(v.trim()) && speaksOfSecrecy(v);
  const walk = (v: unknown, depth: number): SecrecyInside | undefined => {
    if (--budget < 0) return { found: 'too_large' };
    if (oneWordOfSecrecy(v)) return { found: 'value', word: v };
    if (v === null || typeof v !== 'object') return undefined;
    if (depth >= MAX_DEPTH_INSIDE) return { found: 'too_large' };
    if (Array.isArray(v)) {
      for (const inner of v as unknown[]) {
        const found = walk(inner, depth + 1);
        if (found) return found;
      }
      return undefined;
    }
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      if (meantFields(k, ['confidential']).length > 0) return { found: 'name', word: k };
      const found = walk((v as Record<string, unknown>)[k], depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  return walk(value, 0);
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
      // What an unread field holds: a name or a one-word value meant as `confidential`, which the body lacks, would be
      // dropped with it (found from outside: `"options": {"confidential": true}` went to its subject's export). Only
      // secrecy is looked for there: `"officer": {"country": "FR"}` is the caller's own.
      const confidentialAt = optional.find((o) => o.k === 'confidential');
      const inside = confidentialAt ? secrecyInside(record[name]) : undefined;
      if (inside) {
        const meant = `"${confidentialAt!.at}.confidential"`;
        const why = '(a field a request does not read is ignored with all it holds)';
        if (inside.found === 'too_large')
          return `${at}: ${quotedName(name)} holds more than ${MAX_INSIDE} names and values or is nested deeper than ${MAX_DEPTH_INSIDE}: not looked through for a word of secrecy, which would be ignored with it; send ${meant} itself, or less`;
        if (inside.found === 'name')
          return `${at}: ${quotedName(name)} holds ${quotedName(inside.word)}, which is not read there: did you mean ${meant}? ${why}`;
        return `${at}: ${quotedName(name)} holds the word ${quotedName(inside.word)}, which is not read: did you mean ${meant}: true? ${why}`;
      }
      unread.push({ place, name });
      if (unread.length > MAX_UNREAD_FIELDS)
        return `body: more than ${MAX_UNREAD_FIELDS} fields this request does not read (they are welcome, but not without end): send the request's own fields`;
    }
  }
  for (const { place, name } of unread) delete place.record[name];
  return undefined;
}
