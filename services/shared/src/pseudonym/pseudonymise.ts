import type { CdrEvent } from '../cdr/cdrEvent.ts';
import { IdentifierNormaliser, recipientTypeOf, type IdentifierType, type NormalisedIdentifier } from '../identity/normalise.ts';
import { monthDateOf } from '../retention/retentionCalendar.ts';
import { sealIdentifier, tokenOf, type MonthKey } from './monthKeys.ts';

/**
 * Splits a CDR into its identifier-free metadata (with tokens), the vault entries (identifiers sealed
 * under the month key) and the subscriber-index entries. Pure: no I/O; the caller supplies the month key
 * (null when the identifier window has closed: the record is stored without identifiers).
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
}

export interface VaultRow {
  month: string;
  token: string;
  id_type: IdentifierType;
  sealed: string;
  valid: boolean;
  first_seen: number;
}

export interface IndexRow {
  month: string;
  token: string;
  role: 'sender' | 'recipient';
  event_time: number;
  cdr_id: string;
  account_id: string;
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
}

export interface PseudonymisedRecord {
  readonly row: CdrRow;
  readonly vault: VaultRow[];
  readonly index: IndexRow[];
  readonly published: PseudonymisedEvent;
}

interface Derived {
  token: string;
  sealed: string;
}

/** Keeps normalisation and token derivation off the hot path for identifiers seen recently. */
export class Pseudonymiser {
  private readonly derived = new Map<string, Derived>();
  constructor(
    private readonly normaliser = new IdentifierNormaliser(),
    private readonly capacity = 200_000,
  ) {}

  private derive(key: MonthKey, id: NormalisedIdentifier): Derived {
    const cacheKey = `${key.month}\u0000${key.keyId}\u0000${id.type}\u0000${id.value}`;
    let d = this.derived.get(cacheKey);
    if (!d) {
      const token = tokenOf(key, id.type, id.value);
      d = { token, sealed: sealIdentifier(key, token, id.value).toString('base64') };
      if (this.derived.size >= this.capacity) {
        const oldest = this.derived.keys().next();
        if (!oldest.done) this.derived.delete(oldest.value);
      }
      this.derived.set(cacheKey, d);
    }
    return d;
  }

  /** Drops cached derivations of a month whose key was destroyed. */
  forgetMonth(month: string): void {
    for (const k of this.derived.keys()) if (k.startsWith(`${month}\u0000`)) this.derived.delete(k);
  }

  pseudonymise(e: CdrEvent, month: string, key: MonthKey | null, schemaId: number, src: SourcePosition, ingestedAt: number): PseudonymisedRecord {
    const country = e.destination_country ? e.destination_country.toUpperCase() : null;
    const senderType: IdentifierType = e.sender_type;
    const recipientType = recipientTypeOf(e.channel, e.recipient);
    const sender = this.normaliser.normalise(e.sender, senderType, country);
    const recipient = this.normaliser.normalise(e.recipient, recipientType, country);
    const late = key === null;
    let senderToken = '';
    let recipientToken = '';
    const vault: VaultRow[] = [];
    const index: IndexRow[] = [];
    if (key) {
      const monthDate = monthDateOf(month);
      const s = this.derive(key, sender);
      const r = this.derive(key, recipient);
      senderToken = s.token;
      recipientToken = r.token;
      vault.push({ month: monthDate, token: s.token, id_type: sender.type, sealed: s.sealed, valid: sender.valid, first_seen: e.event_time });
      if (r.token !== s.token) vault.push({ month: monthDate, token: r.token, id_type: recipient.type, sealed: r.sealed, valid: recipient.valid, first_seen: e.event_time });
      index.push({ month: monthDate, token: s.token, role: 'sender', event_time: e.event_time, cdr_id: e.cdr_id, account_id: e.account_id });
      index.push({ month: monthDate, token: r.token, role: 'recipient', event_time: e.event_time, cdr_id: e.cdr_id, account_id: e.account_id });
    }
    // Two explicit literals rather than spreads of a shared object: fixed shapes, fewer allocations (the
    // profile of benchmarks/RESULTS.md puts this function and the GC it causes on top).
    const mcc = e.mcc ?? '';
    const mnc = e.mnc ?? '';
    const destination = country ?? '';
    const errorCode = e.error_code ?? '';
    const duration = e.duration_ms ?? 0;
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
      currency: e.currency,
      client_ip: e.client_ip ?? '',
      late,
      schema_id: schemaId,
      src_topic: src.topic,
      src_partition: src.partition,
      src_offset: src.offset,
      ingested_at: ingestedAt,
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
      currency: e.currency,
      late,
    };
    return { row, vault, index, published };
  }
}
