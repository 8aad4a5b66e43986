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
): Promise<LiveLookupResult> {
  const records: RestoredRecord[] = [];
  const expiredMonths: string[] = [];
  for (const month of monthsInRange(from, to)) {
    const monthStart = monthStartOf(month);
    if (now >= identifierCutoff(monthStart)) {
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
     WHERE month = {m:Date} AND token = {t:String} AND event_time >= {from:DateTime64(3)} AND event_time < {to:DateTime64(3)}`,
    { m: monthDateOf(key.month), t: token, from: chTime(from), to: chTime(to) },
  );
  if (hits.length === 0) return [];
  const rows = await storage.query<CdrRowForLookup>(
    `SELECT cdr_id, account_id, event_time, channel, direction, sender_token, recipient_token, sender_type, recipient_type, status,
            duration_ms, provider_id, destination_country, mcc, mnc, segments
     FROM ${storage.table('cdr')} FINAL
     WHERE account_id IN {accounts:Array(String)} AND event_time >= {from:DateTime64(3)} AND event_time < {to:DateTime64(3)} AND cdr_id IN {ids:Array(String)}`,
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
