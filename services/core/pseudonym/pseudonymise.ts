import type { CdrEvent } from '../cdr/cdrEvent.ts';
import type { RowShape } from './rowShape.ts';
import { IdentifierNormaliser, normaliseIdentifier, recipientTypeOf, type IdentifierType, type NormalisedIdentifier } from '../identity/normalise.ts';
import { CalendarMemo, identifiersExpired, monthDateOf, monthStartOf } from '../retention/retentionCalendar.ts';
import { jsSealer, type MonthKey, type MonthSealer, type SealerFactory } from './monthKeys.ts';
import { RecentSightings } from '../dedup/sightings.ts';

/**
 * Splits a CDR into its identifier-free metadata (with tokens) and the vault entries (identifiers sealed
 * under the month key). The subscriber index (token → records) is derived from the cdr rows by the engine
 * (migration 4). Pure: no I/O; the caller supplies the month key (null when the identifier window has
 * closed: the record is stored without identifiers).
 */

export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** A row of the 10-year `cdr` table (ClickHouse JSONEachRow shape). */
export interface CdrRow {
  cdr_id: string;
  account_id: string;
  event_time: number;
  submitted_at: number;
  delivered_at: number | null;
  channel: string;
  direction: string;
  sender_type: string;
  recipient_type: string;
  sender_token: string;
  recipient_token: string;
  sender_valid: boolean;
  recipient_valid: boolean;
  sender_country: string;
  provider_id: string;
  mcc: string;
  mnc: string;
  destination_country: string;
  ported: boolean;
  status: string;
  error_code: string;
  segments: number;
  size_bytes: number;
  duration_ms: number;
  price: number;
  cost: number;
  currency: string;
  client_ip: string;
  late: boolean;
  schema_id: number;
  src_topic: string;
  src_partition: number;
  src_offset: string;
  ingested_at: number;
  /** Which of the record's nullable fields were absent (null): bits of NULL_FIELD. Their columns hold 0 or "". */
  null_fields: number;
}

/**
 * Bits of the cdr row's `null_fields`: the event's nullable fields that the row stores as 0 or "" (the table's columns
 * are not Nullable: migration 16 added this mask as a metadata-only change instead of rewriting 10 years of data).
 * Rows written before it have 0: their absent fields read as stored.
 */
export const NULL_FIELD = {
  duration_ms: 1,
  mcc: 2,
  mnc: 4,
  destination_country: 8,
  error_code: 16,
  client_ip: 32,
} as const;

/** The `null_fields` mask of an event's absent fields (an empty destination country counts as absent, as ingest reads it). */
export function nullFieldsOf(e: Pick<CdrEvent, 'duration_ms' | 'mcc' | 'mnc' | 'destination_country' | 'error_code' | 'client_ip'>): number {
  return (
    (e.duration_ms === null ? NULL_FIELD.duration_ms : 0) |
    (e.mcc === null ? NULL_FIELD.mcc : 0) |
    (e.mnc === null ? NULL_FIELD.mnc : 0) |
    (e.destination_country ? 0 : NULL_FIELD.destination_country) |
    (e.error_code === null ? NULL_FIELD.error_code : 0) |
    (e.client_ip === null ? NULL_FIELD.client_ip : 0)
  );
}

/**
 * The cdr table's insert shape: columns in order, their RowBinary types, and a row's values in the same order. A unit
 * test keeps columns and values in step with CdrRow; an integration test keeps the types in step with the table.
 */
export const CDR_SHAPE: RowShape<CdrRow> = {
  columns: [
    'cdr_id',
    'account_id',
    'event_time',
    'submitted_at',
    'delivered_at',
    'channel',
    'direction',
    'sender_type',
    'recipient_type',
    'sender_token',
    'recipient_token',
    'sender_valid',
    'recipient_valid',
    'sender_country',
    'provider_id',
    'mcc',
    'mnc',
    'destination_country',
    'ported',
    'status',
    'error_code',
    'segments',
    'size_bytes',
    'duration_ms',
    'price',
    'cost',
    'currency',
    'client_ip',
    'late',
    'schema_id',
    'src_topic',
    'src_partition',
    'src_offset',
    'ingested_at',
    'null_fields',
  ],
  types: [
    'String', // cdr_id
    'String', // account_id
    'DateTime64', // event_time
    'DateTime64', // submitted_at
    'Nullable(DateTime64)', // delivered_at
    'String', // channel
    'String', // direction
    'String', // sender_type
    'String', // recipient_type
    'String', // sender_token
    'String', // recipient_token
    'Bool', // sender_valid
    'Bool', // recipient_valid
    'String', // sender_country
    'String', // provider_id
    'String', // mcc
    'String', // mnc
    'String', // destination_country
    'Bool', // ported
    'String', // status
    'String', // error_code
    'UInt32', // segments
    'UInt32', // size_bytes
    'UInt64', // duration_ms
    'Int64', // price
    'Int64', // cost
    'String', // currency
    'String', // client_ip
    'Bool', // late
    'UInt32', // schema_id
    'String', // src_topic
    'UInt32', // src_partition
    'UInt64', // src_offset
    'DateTime64', // ingested_at
    'UInt8', // null_fields
  ],
  tuple: (r) => [
    r.cdr_id,
    r.account_id,
    r.event_time,
    r.submitted_at,
    r.delivered_at,
    r.channel,
    r.direction,
    r.sender_type,
    r.recipient_type,
    r.sender_token,
    r.recipient_token,
    r.sender_valid,
    r.recipient_valid,
    r.sender_country,
    r.provider_id,
    r.mcc,
    r.mnc,
    r.destination_country,
    r.ported,
    r.status,
    r.error_code,
    r.segments,
    r.size_bytes,
    r.duration_ms,
    r.price,
    r.cost,
    r.currency,
    r.client_ip,
    r.late,
    r.schema_id,
    r.src_topic,
    r.src_partition,
    r.src_offset,
    r.ingested_at,
    r.null_fields,
  ],
};

/** What makes a cdr row this row for its insert's deduplication token (the id and both tokens). */
export function cdrRowIdentity(r: CdrRow): string {
  return `${r.cdr_id}|${r.sender_token}|${r.recipient_token}`;
}

export interface VaultRow {
  month: string;
  token: string;
  id_type: IdentifierType;
  sealed: string;
  valid: boolean;
  first_seen: number;
}

/** The identity_vault table's insert shape (RowBinary in the embedded engine: the sealed values are not parsed as JSON). */
export const VAULT_SHAPE: RowShape<VaultRow> = {
  columns: ['month', 'token', 'id_type', 'sealed', 'valid', 'first_seen'],
  types: ['Date', 'String', 'String', 'String', 'Bool', 'DateTime64'],
  tuple: (v) => [v.month, v.token, v.id_type, v.sealed, v.valid, v.first_seen],
};

/** A vault row's identity: one row per (month, token); also how ingest remembers the rows it has written. */
export function vaultRowIdentity(v: VaultRow): string {
  return `${v.month}/${v.token}`;
}

/** The event published to cdr.pseudonymised (schema `cdr-pseudonymised-v1.avsc`). */
export interface PseudonymisedEvent {
  cdr_id: string;
  account_id: string;
  sender_token: string;
  recipient_token: string;
  token_month: string;
  sender_type: string;
  recipient_type: string;
  event_time: number;
  submitted_at: number;
  delivered_at: number | null;
  channel: string;
  direction: string;
  provider_id: string;
  mcc: string;
  mnc: string;
  destination_country: string;
  sender_country: string;
  ported: boolean;
  status: string;
  error_code: string;
  segments: number;
  size_bytes: number;
  duration_ms: number;
  price: number;
  cost: number;
  currency: string;
  late: boolean;
  /** v1.1: number range prefix and number type of each phone party (empty otherwise); see core/identity/numberRange.ts. */
  sender_range: string;
  sender_number_type: string;
  recipient_range: string;
  recipient_number_type: string;
}

export interface PseudonymisedRecord {
  readonly row: CdrRow;
  readonly vault: VaultRow[];
  readonly published: PseudonymisedEvent;
}

/** One identifier as ingest needs it under one month key: normalised, tokenised, sealed. */
interface Derived {
  readonly id: NormalisedIdentifier;
  readonly token: string;
  readonly sealed: string;
}

/** Derivations under one month key, keyed by the raw input (type, default country, spelling). */
interface MonthCache {
  readonly key: MonthKey;
  readonly sealer: MonthSealer;
  readonly monthDate: string;
  readonly derived: Map<string, Derived>;
}

/**
 * The cache key of a raw identifier: unambiguous (NUL-separated; the type has no NUL, the default country is
 * two validated letters or empty), and with the country for every type: sender ids and address-less emails are read
 * under it too (`personalIdentifierIn`: `60123456789` is a person's number to MY, a sender id to GB). Without it the
 * token depended on which destination the cache saw first (found in review).
 */
function rawKey(raw: string, type: IdentifierType, country: string | null): string {
  return `${type}\u0000${country ?? ''}\u0000${raw}`;
}

/**
 * Keeps normalisation, token derivation and sealing off the hot path for identifiers seen recently: one
 * cache lookup per identifier (raw spelling → normalised + token + sealed) per month key, at most
 * `capacity` entries over all months (oldest month first out). Late records (no key) only need the
 * normalised form, from a bounded normaliser cache.
 */
export class Pseudonymiser {
  private readonly months = new Map<string, MonthCache>();
  private readonly normaliser: IdentifierNormaliser;
  /** Raw identifiers seen once recently: only a second sighting earns a cache entry (see `derive`). */
  private readonly seenOnce: RecentSightings | undefined;
  private readonly calendar = new CalendarMemo();
  private size = 0;
  constructor(
    private readonly capacity = 200_000,
    admission: 'second-sight' | 'always' = 'second-sight',
    private readonly sealerFor: SealerFactory = jsSealer,
  ) {
    this.normaliser = new IdentifierNormaliser(capacity);
    this.seenOnce = admission === 'second-sight' && capacity > 0 ? new RecentSightings(capacity) : undefined;
  }

  private monthCache(month: string, key: MonthKey): MonthCache {
    let m = this.months.get(month);
    // A different key object for the same month (a rotation in tests, or the ring reloaded it) starts afresh.
    if (m === undefined || m.key !== key) {
      if (m) this.forgetMonth(month);
      m = { key, sealer: this.sealerFor(key), monthDate: monthDateOf(month), derived: new Map() };
      this.months.set(month, m);
    }
    return m;
  }

  private derive(m: MonthCache, raw: string, type: IdentifierType, country: string | null): Derived {
    const cacheKey = rawKey(raw, type, country);
    let d = m.derived.get(cacheKey);
    if (d === undefined) {
      const id = normaliseIdentifier(raw, type, country);
      const { token, sealed } = m.sealer.tokenAndSeal(id.type, id.value);
      d = { id, token, sealed };
      if (this.capacity === 0) return d;
      // Admission on the second sighting: traffic to one-off numbers (one-time passwords, notifications) would
      // otherwise push every entry through the cache — each a few hundred bytes that outlive the young generation
      // and die in the old one — and evict the subscribers that do come back. A returning identifier costs one
      // extra derivation. (benchmarks/results/ab-identifier-cache-2026-12-02.md)
      if (this.seenOnce && !this.seenOnce.sawBefore(cacheKey)) return d;
      if (this.size >= this.capacity) this.evictOne(m);
      m.derived.set(cacheKey, d);
      this.size++;
    }
    return d;
  }

  /** Evicts the oldest entry of the oldest other month that has one, else this month's own oldest. */
  private evictOne(current: MonthCache): void {
    for (const [month, m] of this.months) {
      if (m === current) continue;
      const oldest = m.derived.keys().next();
      if (!oldest.done) {
        m.derived.delete(oldest.value);
        this.size--;
      }
      if (m.derived.size === 0) {
        this.months.delete(month);
        m.sealer.close();
      }
      if (!oldest.done) return;
    }
    const oldest = current.derived.keys().next();
    if (!oldest.done) {
      current.derived.delete(oldest.value);
      this.size--;
    }
  }

  /** Drops everything derived under a month key that was destroyed. */
  forgetMonth(month: string): void {
    const m = this.months.get(month);
    if (!m) return;
    this.size -= m.derived.size;
    this.months.delete(month);
    m.sealer.close();
  }

  /** Drops every month's derivations and lets go of their keys (the work is ending). */
  close(): void {
    for (const month of [...this.months.keys()]) this.forgetMonth(month);
  }

  /** Drops the derivations of every month whose identifier window has closed at `now` (their key is no longer used). */
  forgetExpired(now: number): void {
    for (const month of [...this.months.keys()]) if (identifiersExpired(monthStartOf(month), now)) this.forgetMonth(month);
  }

  /** Months with derivations (and an open sealer) under their key, in order (for tests). */
  get monthsHeld(): string[] {
    return [...this.months.keys()].sort();
  }

  /** Entries cached over all months (for tests and metrics). */
  get cachedIdentifiers(): number {
    return this.size;
  }

  pseudonymise(e: CdrEvent, month: string, key: MonthKey | null, schemaId: number, src: SourcePosition, ingestedAt: number): PseudonymisedRecord {
    const country = e.destination_country ? e.destination_country.toUpperCase() : null;
    const senderType: IdentifierType = e.sender_type;
    const recipientType = recipientTypeOf(e.channel, e.recipient, e.direction, country);
    const late = key === null;
    let sender: NormalisedIdentifier;
    let recipient: NormalisedIdentifier;
    let senderToken = '';
    let recipientToken = '';
    const vault: VaultRow[] = [];
    if (key) {
      const m = this.monthCache(month, key);
      const s = this.derive(m, e.sender, senderType, country);
      const r = this.derive(m, e.recipient, recipientType, country);
      sender = s.id;
      recipient = r.id;
      senderToken = s.token;
      recipientToken = r.token;
      const monthDate = m.monthDate;
      vault.push({ month: monthDate, token: s.token, id_type: sender.type, sealed: s.sealed, valid: sender.valid, first_seen: e.event_time });
      if (r.token !== s.token)
        vault.push({ month: monthDate, token: r.token, id_type: recipient.type, sealed: r.sealed, valid: recipient.valid, first_seen: e.event_time });
    } else {
      sender = this.normaliser.normalise(e.sender, senderType, country);
      recipient = this.normaliser.normalise(e.recipient, recipientType, country);
    }
    // Two explicit literals rather than spreads of a shared object: fixed shapes, fewer allocations (the
    // profile of benchmarks/RESULTS.md puts this function and the GC it causes on top).
    const mcc = e.mcc ?? '';
    const mnc = e.mnc ?? '';
    const destination = country ?? '';
    const errorCode = e.error_code ?? '';
    const duration = e.duration_ms ?? 0;
    // Any case is read, as for the country (found from outside: `eur` was dead-lettered while `my` was taken).
    const currency = e.currency.toUpperCase();
    const row: CdrRow = {
      cdr_id: e.cdr_id,
      account_id: e.account_id,
      event_time: e.event_time,
      submitted_at: e.submitted_at,
      delivered_at: e.delivered_at,
      channel: e.channel,
      direction: e.direction,
      sender_type: senderType,
      recipient_type: recipientType,
      sender_token: senderToken,
      recipient_token: recipientToken,
      sender_valid: sender.valid,
      recipient_valid: recipient.valid,
      sender_country: sender.country,
      provider_id: e.provider_id,
      mcc,
      mnc,
      destination_country: destination,
      ported: e.ported,
      status: e.status,
      error_code: errorCode,
      segments: e.segments,
      size_bytes: e.size_bytes,
      duration_ms: duration,
      price: e.price,
      cost: e.cost,
      currency,
      // A record that arrives after its usage window (3 years) is stored without the IP, as a late record is
      // without identifiers: otherwise a retention pass that just cleared the month would find it again.
      client_ip: e.client_ip && !this.calendar.usageExpired(e.event_time, ingestedAt) ? e.client_ip : '',
      late,
      schema_id: schemaId,
      src_topic: src.topic,
      src_partition: src.partition,
      src_offset: src.offset,
      ingested_at: ingestedAt,
      null_fields: nullFieldsOf(e),
    };
    const published: PseudonymisedEvent = {
      cdr_id: e.cdr_id,
      account_id: e.account_id,
      sender_token: senderToken,
      recipient_token: recipientToken,
      token_month: month,
      sender_type: senderType,
      recipient_type: recipientType,
      event_time: e.event_time,
      submitted_at: e.submitted_at,
      delivered_at: e.delivered_at,
      channel: e.channel,
      direction: e.direction,
      provider_id: e.provider_id,
      mcc,
      mnc,
      destination_country: destination,
      sender_country: sender.country,
      ported: e.ported,
      status: e.status,
      error_code: errorCode,
      segments: e.segments,
      size_bytes: e.size_bytes,
      duration_ms: duration,
      price: e.price,
      cost: e.cost,
      currency,
      late,
      sender_range: sender.range ?? '',
      sender_number_type: sender.numberType ?? '',
      recipient_range: recipient.range ?? '',
      recipient_number_type: recipient.numberType ?? '',
    };
    return { row, vault, published };
  }
}
