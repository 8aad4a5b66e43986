import type { Storage } from '../clickhouse/index.ts';
import type { MonthKeyRing } from '../keys/index.ts';
import { openIdentifier, tokenOf, type MonthKey, identifierCutoff, monthDateOf, monthStartOf, monthsInRange } from '../../core/index.ts';
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
  duration_ms: number;
  provider_id: string;
  destination_country: string;
  mcc: string;
  mnc: string;
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
  const records: RestoredRecord[] = [];
  const expiredMonths: string[] = [];
  for (const month of monthsInRange(from, to)) {
    const monthStart = monthStartOf(month);
    if (!opts.untilDestroyed && now >= identifierCutoff(monthStart)) {
      expiredMonths.push(month);
      continue;
    }
    const key = await keyRing.existingKey(month);
    if (!key) {
      if (await monthDestroyed(storage, month)) expiredMonths.push(month);
      continue; // no key and not destroyed: nothing was ever stored for that month
    }
    records.push(...(await lookupMonth(storage, key, id, Math.max(from, monthStart), to)));
  }
  records.sort((a, b) => (a.event_time < b.event_time ? -1 : a.event_time > b.event_time ? 1 : a.cdr_id.localeCompare(b.cdr_id)));
  return { records, expiredMonths };
}

async function monthDestroyed(storage: Storage, month: string): Promise<boolean> {
  const rows = await storage.query<{ n: string }>(`SELECT count() n FROM ${storage.table('destroyed_months')} WHERE month = {m:Date}`, {
    m: monthDateOf(month),
  });
  return Number(rows[0]?.n ?? 0) > 0;
}

async function lookupMonth(storage: Storage, key: MonthKey, id: NormalisedIdentifier, from: number, to: number): Promise<RestoredRecord[]> {
  const token = tokenOf(key, id.type, id.value);
  const hits = await storage.query<{ cdr_id: string; account_id: string; event_time: string }>(
    `SELECT DISTINCT cdr_id, account_id, event_time FROM ${storage.table('subscriber_index')}
     WHERE month = {m:Date} AND token = {t:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}`,
    { m: monthDateOf(key.month), t: token, from: chTime(from), to: chTime(to) },
  );
  if (hits.length === 0) return [];
  const rows = await storage.query<CdrRowForLookup>(
    `SELECT cdr_id, account_id, event_time, channel, direction, sender_token, recipient_token, sender_type, recipient_type, status,
            duration_ms, provider_id, destination_country, mcc, mnc, segments
     FROM ${storage.table('cdr')} FINAL
     WHERE account_id IN {accounts:Array(String)} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} AND cdr_id IN {ids:Array(String)}`,
    { accounts: [...new Set(hits.map((h) => h.account_id))], ids: hits.map((h) => h.cdr_id), from: chTime(from), to: chTime(to) },
  );
  const tokens = new Set<string>();
  for (const r of rows) {
    if (r.sender_token) tokens.add(r.sender_token);
    if (r.recipient_token) tokens.add(r.recipient_token);
  }
  const identifiers = await openTokens(storage, key, [...tokens]);
  return rows.map((r) => restoredRecord(r, identifiers.get(r.sender_token) ?? '', identifiers.get(r.recipient_token) ?? '', 'live'));
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
}

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
    duration_ms: Number(r.duration_ms),
    provider_id: r.provider_id,
    destination_country: r.destination_country,
    mcc: r.mcc,
    mnc: r.mnc,
    segments: Number(r.segments),
    source,
    ...(holdId !== undefined ? { hold_id: holdId } : {}),
  };
}

/** Opens vault entries of one month for a set of tokens. */
export async function openTokens(storage: Storage, key: MonthKey, tokens: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (tokens.length === 0) return out;
  const rows = await storage.query<{ token: string; sealed: string }>(
    `SELECT token, any(sealed) sealed FROM ${storage.table('identity_vault')} WHERE month = {m:Date} AND token IN {t:Array(String)} GROUP BY token`,
    { m: monthDateOf(key.month), t: tokens },
  );
  for (const r of rows) out.set(r.token, openIdentifier(key, r.token, Buffer.from(r.sealed, 'base64')));
  return out;
}

/** Where a page of an answer ends: the next page starts after this (event_time, cdr_id). */
export interface PagePosition {
  readonly eventTime: string;
  readonly cdrId: string;
}

/** How many records of one month an identifier appears in, within [from, to) (both directions). */
export async function countLiveMonth(storage: Storage, key: MonthKey, id: NormalisedIdentifier, from: number, to: number): Promise<number> {
  const rows = await storage.query<{ n: string }>(
    `SELECT uniqExact(cdr_id) n FROM ${storage.table('subscriber_index')}
     WHERE month = {m:Date} AND token = {t:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}`,
    { m: monthDateOf(key.month), t: tokenOf(key, id.type, id.value), from: chTime(from), to: chTime(to) },
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * One page of an identifier's records of one month, in (event_time, cdr_id) order, both parties restored. Pages keep
 * memory bounded whatever the answer's size: the index gives the page's records, then their rows and vault entries.
 */
export async function pageLiveMonth(
  storage: Storage,
  key: MonthKey,
  id: NormalisedIdentifier,
  from: number,
  to: number,
  after: PagePosition | undefined,
  limit: number,
): Promise<RestoredRecord[]> {
  const hits = await storage.query<{ cdr_id: string; account_id: string; event_time: string }>(
    `SELECT cdr_id, any(account_id) AS account_id, event_time FROM ${storage.table('subscriber_index')}
     WHERE month = {m:Date} AND token = {t:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}
       AND (event_time, cdr_id) > ({at:DateTime64(3, 'UTC')}, {id:String})
     GROUP BY event_time, cdr_id ORDER BY event_time, cdr_id LIMIT {n:UInt32}`,
    {
      m: monthDateOf(key.month),
      t: tokenOf(key, id.type, id.value),
      from: chTime(from),
      to: chTime(to),
      at: after ? after.eventTime : chTime(0),
      id: after ? after.cdrId : '',
      n: limit,
    },
  );
  if (hits.length === 0) return [];
  const first = hits[0]!.event_time;
  const last = hits[hits.length - 1]!.event_time;
  const rows = await storage.query<CdrRowForLookup>(
    `SELECT cdr_id, account_id, event_time, channel, direction, sender_token, recipient_token, sender_type, recipient_type, status,
            duration_ms, provider_id, destination_country, mcc, mnc, segments
     FROM ${storage.table('cdr')} FINAL
     WHERE account_id IN {accounts:Array(String)} AND event_time >= {first:DateTime64(3, 'UTC')} AND event_time <= {last:DateTime64(3, 'UTC')} AND cdr_id IN {ids:Array(String)}`,
    { accounts: [...new Set(hits.map((h) => h.account_id))], ids: hits.map((h) => h.cdr_id), first, last },
  );
  const byId = new Map(rows.map((r) => [r.cdr_id, r]));
  const tokens = new Set<string>();
  for (const r of rows) {
    if (r.sender_token) tokens.add(r.sender_token);
    if (r.recipient_token) tokens.add(r.recipient_token);
  }
  const identifiers = await openTokens(storage, key, [...tokens]);
  const out: RestoredRecord[] = [];
  for (const h of hits) {
    const r = byId.get(h.cdr_id);
    // An index entry whose record is gone (its tokens cleared, or not yet merged away) is not part of the answer.
    if (!r || !r.sender_token) continue;
    out.push(restoredRecord(r, identifiers.get(r.sender_token) ?? '', identifiers.get(r.recipient_token) ?? '', 'live'));
  }
  return out;
}

/** A restored record's position, for the next page. */
export function positionOf(r: RestoredRecord): PagePosition {
  return { eventTime: chTime(Date.parse(r.event_time)), cdrId: r.cdr_id };
}

/** True when a month's key was destroyed (its identifiers are gone for good). */
export async function monthKeyDestroyed(storage: Storage, month: string): Promise<boolean> {
  return monthDestroyed(storage, month);
}
