/**
 * Fields of a request body that the route does not read (ADR 0041). The brief's shapes say "more fields are welcome,
 * these must be there": a body may carry fields of its own (a caller's note, a field copied from another request's
 * body) and is answered as if they were not there. They are removed before the handler runs, so nothing unread is
 * stored, audited or signed. A field that looks like a misspelling of one the route reads is refused instead: read as
 * welcome, `{"confidental": true}` would disclose a confidential request to the data subject and `{"form": …}` would
 * answer another range — each silently.
 *
 * Only objects whose schema opts in (`additionalProperties: true` with `properties`) are treated so. A strict one
 * (`additionalProperties: false`: the retention pass's body, where an unread `dryRun` would run a real pass) refuses
 * any other field, and the refusal names it and the field it likely meant.
 */

/** The part of a JSON schema this module reads. */
export interface ObjectSchema {
  readonly type?: unknown;
  readonly additionalProperties?: unknown;
  readonly properties?: Readonly<Record<string, unknown>>;
}

/** Other names a caller may give a field, normalised (lower case, letters and digits only). */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  from: ['start', 'since', 'begin', 'after', 'startdate', 'fromdate', 'datefrom', 'starttime', 'fromtime', 'timefrom', 'startat', 'fromts'],
  to: ['end', 'until', 'till', 'before', 'enddate', 'todate', 'dateto', 'endtime', 'totime', 'timeto', 'endat', 'tots'],
  country: ['region', 'countrycode', 'cc', 'iso', 'defaultregion', 'defaultcountry'],
  confidential: ['secret', 'private', 'covert', 'sealed', 'nondisclosure', 'nodisclosure', 'gag'],
  reason: ['justification', 'grounds', 'why'],
  case_reference: ['case', 'caseref', 'caseid', 'casenumber', 'reference', 'ref', 'warrant'],
  legal_basis: ['basis', 'legalground', 'legalgrounds', 'law', 'statute'],
  as_sent: ['verbatim', 'raw', 'exact', 'literal'],
};

const normalised = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Optimal string alignment distance (a transposition of two neighbours counts once: `form` is 1 from `from`). */
export function alignmentDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The field of `known` that `name` most likely meant, when it looks like a misspelling or another name of one: the
 * same letters in another case or with other separators (`dryRun`, `Case-Reference`), a known other name (`start`
 * for `from`), or one or two typing slips (one for names of up to 7 letters, two from 8). Undefined when nothing is
 * that close, or two fields are equally close.
 */
export function meantField(name: string, known: readonly string[]): string | undefined {
  const n = normalised(name);
  if (n === '') return undefined;
  for (const k of known) if (normalised(k) === n || ALIASES[k]?.includes(n)) return k;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let tie = false;
  for (const k of known) {
    const target = normalised(k);
    const allowed = Math.max(n.length, target.length) >= 8 ? 2 : Math.min(n.length, target.length) >= 3 ? 1 : 0;
    // The distance is at least the difference in length: a long name (a body may hold a megabyte-long one) is not
    // compared letter by letter.
    if (Math.abs(n.length - target.length) > allowed) continue;
    const d = alignmentDistance(n, target);
    if (d > allowed) continue;
    if (d < bestDistance) [best, bestDistance, tie] = [k, d, false];
    else if (d === bestDistance) tie = true;
  }
  return tie ? undefined : best;
}

/** A field name fit to quote back: short, plain, and not a number someone may have put there. */
const quotable = (name: string): boolean => /^[A-Za-z0-9_ .-]{1,40}$/.test(name) && !/\d{5}/.test(name);

/**
 * Removes from `body` (in place) the fields of opted-in objects that the schema does not name, at any depth the
 * schema describes. Returns the refusal's message when one of them looks like a misspelling of a named field, or
 * when an object that takes no other fields (`additionalProperties: false`) has one (the body is then left as it was
 * sent); undefined otherwise.
 */
export function dropUnreadFields(body: unknown, schema: ObjectSchema | undefined, at = 'body'): string | undefined {
  if (!schema || typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const properties = schema.properties ?? {};
  const record = body as Record<string, unknown>;
  const known = Object.keys(properties);
  const unread: string[] = [];
  const welcoming = schema.additionalProperties === true;
  if (schema.properties && (welcoming || schema.additionalProperties === false)) {
    for (const name of Object.keys(record)) {
      if (Object.hasOwn(properties, name)) continue;
      const meant = meantField(name, known);
      const what = quotable(name) ? `"${name}" is not a field of this request` : "a field name that is not one of this request's was sent";
      if (meant !== undefined && welcoming) {
        return `${at}: ${what}: did you mean "${meant}"? (fields a request does not read are ignored; one that looks like a misspelt field is refused, so that a typo never changes an answer unnoticed)`;
      }
      // A strict object (the schema would refuse it as "must NOT have additional properties"): said with the field.
      if (!welcoming)
        return `${at}: ${what}${meant !== undefined ? `: did you mean "${meant}"?` : ''} (it takes ${known.map((k) => `"${k}"`).join(', ')} only)`;
      unread.push(name);
    }
  }
  for (const name of known) {
    const inner = properties[name] as ObjectSchema | undefined;
    if (inner && typeof inner === 'object' && inner.properties) {
      const problem = dropUnreadFields(record[name], inner, `${at}.${name}`);
      if (problem !== undefined) return problem;
    }
  }
  for (const name of unread) delete record[name];
  return undefined;
}
