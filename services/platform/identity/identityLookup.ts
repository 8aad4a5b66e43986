import { TupleParam } from '@clickhouse/client';
import type { Storage } from '../clickhouse/index.ts';
import type { MonthKeyRing } from '../keys/index.ts';
import { openIdentifier, tokenOf, type MonthKey, identifierCutoff, monthDateOf, monthStartOf, monthsInRange, NULL_FIELD } from '../../core/index.ts';
import type { NormalisedIdentifier } from '../../core/index.ts';

/**
 * Finds the records of one identifier in a time range, with both parties' identifiers restored, from
 * the live 12-month data: month key → token → subscriber index → cdr rows → vault. A month whose
 * identifier window has closed (or whose key is destroyed) is reported as expired and never answered
 * from live data. This is an audited path: callers (LEA, DSAR, holds) record every use.
 */
export interface RestoredRecord {
  cdr_id: string;
  account_id: string;
  event_time: string;
  channel: string;
  direction: string;
  sender: string;
  recipient: string;
  sender_type: string;
  recipient_type: string;
  status: string;
  /** null when the record had none (rows stored before migration 16 give the 0 stored in its place). */
  duration_ms: number | null;
  provider_id: string;
  /** null when the record had none (ingest stores an absent or empty one as ""). */
  destination_country: string | null;
  mcc: string | null;
  mnc: string | null;
  segments: number;
  /** Where the answer came from: live data, or a legal hold's preserved copy. */
  source: 'live' | 'held';
  hold_id?: string;
}

export interface LiveLookupResult {
  readonly records: RestoredRecord[];
  /** Months of the range whose identifiers are gone (expired or key destroyed). */
  readonly expiredMonths: string[];
}

interface CdrRowForLookup extends RecordMetadataRow {
  sender_token: string;
  recipient_token: string;
}

/** ClickHouse DateTime64(3) parameter text from epoch ms. */
export function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** ClickHouse DateTime64 output ('YYYY-MM-DD hh:mm:ss.sss', UTC) to ISO 8601. */
export function isoFromCh(text: string): string {
  return `${text.replace(' ', 'T')}Z`;
}

export async function lookupLive(
  storage: Storage,
  keyRing: MonthKeyRing,
  id: NormalisedIdentifier,
  from: number,
  to: number,
  now: number,
  /**
   * `untilDestroyed`: answer a month whose window has closed at `now` but whose identifiers are still stored (the
   * retention pass about to destroy it). Only legal holds use it, to copy what they name before it is destroyed.
   */
  opts: { readonly untilDestroyed?: boolean } = {},
): Promise<LiveLookupResult> {
  const keys: MonthKey[] = [];
  const expiredMonths: string[] = [];
  for (const month of monthsInRange(from, to)) {
    if (!opts.untilDestroyed && now >= identifierCutoff(monthStartOf(month))) {
      expiredMonths.push(month);
      continue;
    }
    const key = await keyRing.existingKey(month);
    if (key) keys.push(key);
    else if (await monthDestroyed(storage, month)) expiredMonths.push(month);
    // no key and not destroyed: nothing was ever stored for that month
  }
  const records: RestoredRecord[] = [];
  let after: PagePosition | undefined;
  for (;;) {
    const page = await pageLive(storage, keys, id, from, to, after, LOOKUP_PAGE);
    records.push(...page.records);
    if (page.last === undefined) break;
    after = page.last;
  }
  return { records, expiredMonths };
}

const LOOKUP_PAGE = 10_000;

async function monthDestroyed(storage: Storage, month: string): Promise<boolean> {
  const rows = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('destroyed_months')} WHERE month = {m:Date}`, {
    m: monthDateOf(month),
  });
  return Number(rows[0]?.n ?? 0) > 0;
}

/** The metadata columns a restored record carries, as ClickHouse returns them (live `cdr` or `held_records`). */
export interface RecordMetadataRow {
  cdr_id: string;
  account_id: string;
  event_time: string;
  channel: string;
  direction: string;
  sender_type: string;
  recipient_type: string;
  status: string;
  duration_ms: string | number;
  provider_id: string;
  destination_country: string;
  mcc: string;
  mnc: string;
  segments: number;
  /** core/pseudonym NULL_FIELD bits (0 in rows stored before migration 16). */
  null_fields: number;
}

/** A stored text field that is empty: the record had none (validation takes "" as absent for these fields). */
const orNull = (text: string): string | null => (text === '' ? null : text);

/** One restored record from its metadata row and its two opened identifiers. */
export function restoredRecord(r: RecordMetadataRow, sender: string, recipient: string, source: 'live' | 'held', holdId?: string): RestoredRecord {
  return {
    cdr_id: r.cdr_id,
    account_id: r.account_id,
    event_time: isoFromCh(r.event_time),
    channel: r.channel,
    direction: r.direction,
    sender,
    recipient,
    sender_type: r.sender_type,
    recipient_type: r.recipient_type,
    status: r.status,
    duration_ms: Number(r.null_fields) & NULL_FIELD.duration_ms ? null : Number(r.duration_ms),
    provider_id: r.provider_id,
    destination_country: orNull(r.destination_country),
    mcc: orNull(r.mcc),
    mnc: orNull(r.mnc),
    segments: Number(r.segments),
    source,
    ...(holdId !== undefined ? { hold_id: holdId } : {}),
  };
}

/**
 * Opens vault entries for a set of tokens, each under its own month's key, in one query: one branch per month, each
 * reading its own partition for its own tokens only.
 */
export async function openTokens(storage: Storage, tokensByMonth: ReadonlyMap<MonthKey, readonly string[]>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const keyOf = new Map<string, MonthKey>();
  const params: Record<string, unknown> = {};
  const branches: string[] = [];
  for (const [key, monthTokens] of tokensByMonth) {
    if (monthTokens.length === 0) continue;
    const i = branches.length;
    keyOf.set(key.month, key);
    params[`m${i}`] = monthDateOf(key.month);
    params[`t${i}`] = [...new Set(monthTokens)];
    branches.push(
      `SELECT {m${i}:Date} AS month, token, any(sealed) AS sealed FROM ${storage.table('identity_vault')}
       WHERE month = {m${i}:Date} AND token IN {t${i}:Array(String)} GROUP BY token`,
    );
  }
  if (branches.length === 0) return out;
  const rows = await storage.query<{ m: string; token: string; sealed: string }>(
    `SELECT formatDateTime(month, '%Y-%m') AS m, token, sealed FROM (${branches.join(' UNION ALL ')})`,
    params,
  );
  for (const r of rows) {
    const key = keyOf.get(r.m);
    if (key) out.set(r.token, openIdentifier(key, r.token, Buffer.from(r.sealed, 'base64')));
  }
  return out;
}

/** Where a page of an answer ends: the next page starts after this (event_time, cdr_id). */
export interface PagePosition {
  readonly eventTime: string;
  readonly cdrId: string;
}

/**
 * The index entries of one identifier over several months, as one query: one UNION ALL branch per month, each
 * reading only its own partition for its own token (the identifier's token differs per month). One `month IN … AND
 * token IN …` would read every month's parts for every month's token: 13× the granules on a whole-window request
 * (421 marks instead of ~31 over 10M records, 90 ms instead of ~10).
 */
function indexBranches(
  storage: Storage,
  keys: readonly MonthKey[],
  id: NormalisedIdentifier,
  columns: string,
  extra: string,
  tail = '',
): { sql: string; params: Record<string, unknown> } {
  const params: Record<string, unknown> = {};
  const sql = keys
    .map((k, i) => {
      params[`m${i}`] = monthDateOf(k.month);
      params[`t${i}`] = tokenOf(k, id.type, id.value);
      return `(SELECT ${columns} FROM ${storage.table('subscriber_index')}
       WHERE month = {m${i}:Date} AND token = {t${i}:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}${extra}${tail})`;
    })
    .join(' UNION ALL ');
  return { sql, params };
}

/**
 * How many records of each given month an identifier appears in, within [from, to) (both directions), in one query.
 * Months without a record are absent from the map.
 */
export async function countLive(storage: Storage, keys: readonly MonthKey[], id: NormalisedIdentifier, from: number, to: number): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const branches = indexBranches(storage, keys, id, `formatDateTime(month, '%Y-%m') AS m, uniqExact(cdr_id) AS n`, ' GROUP BY month');
  const rows = await storage.query<{ m: string; n: string }>(`SELECT m, n FROM (${branches.sql})`, {
    ...branches.params,
    from: chTime(from),
    to: chTime(to),
  });
  return new Map(rows.map((r) => [r.m, Number(r.n)]));
}

export interface LivePage {
  readonly records: RestoredRecord[];
  /** Where the next page starts; undefined when this page was the last. */
  readonly last: PagePosition | undefined;
}

/** One record an identifier's index names: enough to read its row by its exact primary key. No identifier. */
export interface IndexHit {
  readonly cdr_id: string;
  readonly account_id: string;
  /** ClickHouse DateTime64(3) text, UTC. */
  readonly event_time: string;
}

export interface IndexPage {
  readonly hits: readonly IndexHit[];
  /** Where the next page starts; undefined when this page was the last. */
  readonly last: PagePosition | undefined;
}

/**
 * One page of an identifier's records over the given months, in (event_time, cdr_id) order (so month order too),
 * both parties restored. Three queries per page whatever the number of months: the index gives the page's records
 * (`indexPage`), then their rows (by their exact primary key), then their vault entries (`restoreHits`). Pages keep
 * memory bounded whatever the answer's size.
 */
export async function pageLive(
  storage: Storage,
  keys: readonly MonthKey[],
  id: NormalisedIdentifier,
  from: number,
  to: number,
  after: PagePosition | undefined,
  limit: number,
): Promise<LivePage> {
  const page = await indexPage(storage, keys, id, from, to, after, limit);
  return { records: await restoreHits(storage, keys, page.hits), last: page.last };
}

/**
 * The index step of `pageLive`: which records the page holds, in order. It reads tokens and positions only, so a
 * caller may look ahead with it (the disclosure desk counts a one-page answer from it) before any identifier is opened.
 */
export async function indexPage(
  storage: Storage,
  keys: readonly MonthKey[],
  id: NormalisedIdentifier,
  from: number,
  to: number,
  after: PagePosition | undefined,
  limit: number,
): Promise<IndexPage> {
  if (keys.length === 0) return { hits: [], last: undefined };
  // Each month gives at most the page's first `limit` records after the position (one row each: there is an index row
  // per role, and replayed rows may not be merged yet), so the union holds the page's records; `event_time >= at` lets the primary
  // key skip what earlier pages read. Without both, every page read the rest of the identifier's index: a
  // 200,000-record answer spent ~90 ms per page there, growing with the answer (benchmarks/results/lea-large-*.md).
  const branches = indexBranches(
    storage,
    keys,
    id,
    'cdr_id, account_id, event_time',
    ` AND event_time >= {at:DateTime64(3, 'UTC')} AND (event_time, cdr_id) > ({at:DateTime64(3, 'UTC')}, {id:String})`,
    ' ORDER BY event_time, cdr_id LIMIT 1 BY event_time, cdr_id LIMIT {n:UInt32}',
  );
  const hits = await storage.query<IndexHit>(
    `SELECT cdr_id, any(account_id) AS account_id, event_time FROM (${branches.sql})
     GROUP BY event_time, cdr_id ORDER BY event_time, cdr_id LIMIT {n:UInt32}`,
    {
      ...branches.params,
      from: chTime(from),
      to: chTime(to),
      at: after ? after.eventTime : chTime(0),
      id: after ? after.cdrId : '',
      n: limit,
    },
  );
  const lastHit = hits[hits.length - 1];
  return { hits, last: lastHit === undefined || hits.length < limit ? undefined : { eventTime: lastHit.event_time, cdrId: lastHit.cdr_id } };
}

/** The records an index page names, in its order, both parties restored (under `keys`, the months' keys). */
export async function restoreHits(storage: Storage, keys: readonly MonthKey[], hits: readonly IndexHit[]): Promise<RestoredRecord[]> {
  if (hits.length === 0) return [];
  const rows = await storage.query<CdrRowForLookup>(
    `SELECT cdr_id, account_id, event_time, channel, direction, sender_token, recipient_token, sender_type, recipient_type, status,
            duration_ms, provider_id, destination_country, mcc, mnc, segments, null_fields
     FROM ${storage.table('cdr')} FINAL
     WHERE (account_id, event_time, cdr_id) IN {keys:Array(Tuple(String, DateTime64(3, 'UTC'), String))}`,
    { keys: hits.map((h) => new TupleParam([h.account_id, h.event_time, h.cdr_id])) },
  );
  const byId = new Map(rows.map((r) => [r.cdr_id, r]));
  const keyOf = new Map(keys.map((k) => [k.month, k]));
  const tokensByMonth = new Map<MonthKey, string[]>();
  for (const r of rows) {
    // A record's tokens are under the key of its own event month (ingest writes them so; the index's month is it).
    const key = keyOf.get(r.event_time.slice(0, 7));
    if (!key) continue;
    let list = tokensByMonth.get(key);
    if (!list) tokensByMonth.set(key, (list = []));
    if (r.sender_token) list.push(r.sender_token);
    if (r.recipient_token) list.push(r.recipient_token);
  }
  const identifiers = await openTokens(storage, tokensByMonth);
  const records: RestoredRecord[] = [];
  for (const h of hits) {
    const r = byId.get(h.cdr_id);
    // An index entry whose record is gone (its tokens cleared, or not yet merged away) is not part of the answer; nor
    // is a record whose vault entries went meanwhile (a retention pass destroying its month while the answer streams).
    if (!r || !r.sender_token) continue;
    const sender = identifiers.get(r.sender_token);
    const recipient = r.recipient_token ? identifiers.get(r.recipient_token) : '';
    if (sender === undefined || recipient === undefined) continue;
    records.push(restoredRecord(r, sender, recipient, 'live'));
  }
  return records;
}

/** A restored record's position, for the next page. */
export function positionOf(r: RestoredRecord): PagePosition {
  return { eventTime: chTime(Date.parse(r.event_time)), cdrId: r.cdr_id };
}

/** True when a month's key was destroyed (its identifiers are gone for good). */
export async function monthKeyDestroyed(storage: Storage, month: string): Promise<boolean> {
  return monthDestroyed(storage, month);
}
