/**
 * What-if prototypes for the stage benchmarks: NOT used by the pipeline. Each produces exactly what the
 * corresponding services/ code produces (stages.ts checks that on every record), so the difference in
 * ns/record is evidence for a proposed change, not a different feature.
 *
 * FastPseudonymiser vs services/shared/src/pseudonym/pseudonymise.ts:
 *   - one cache lookup per identifier (raw input → normalised + token + sealed, per month key) instead of a
 *     normaliser lookup plus a derivation lookup with two freshly built composite key strings;
 *   - `row` and `published` built as plain literals with a fixed shape, no `{...common}` spreads;
 *   - the `YYYY-MM-01` month date memoised instead of re-validated with a regex for every record.
 */
import type { CdrEvent } from '../../services/shared/src/cdr/cdrEvent.ts';
import { normaliseIdentifier, recipientTypeOf, type IdentifierType, type NormalisedIdentifier } from '../../services/shared/src/identity/normalise.ts';
import { sealIdentifier, tokenOf, type MonthKey } from '../../services/shared/src/pseudonym/monthKeys.ts';
import type { CdrRow, IndexRow, PseudonymisedRecord, SourcePosition, VaultRow } from '../../services/shared/src/pseudonym/pseudonymise.ts';
import { monthDateOf } from '../../services/shared/src/retention/retentionCalendar.ts';

interface Entry {
  readonly id: NormalisedIdentifier;
  readonly token: string;
  readonly sealed: string;
}

export class FastPseudonymiser {
  private readonly byKey = new WeakMap<MonthKey, Map<string, Entry>>();
  private readonly plain = new Map<string, NormalisedIdentifier>();
  private readonly monthDates = new Map<string, string>();
  constructor(private readonly capacity = 200_000) {}

  private entry(key: MonthKey, raw: string, type: IdentifierType, country: string | null): Entry {
    let m = this.byKey.get(key);
    if (!m) {
      m = new Map();
      this.byKey.set(key, m);
    }
    const k = country === null ? `${type}|${raw}` : `${type}|${country}|${raw}`;
    let e = m.get(k);
    if (e === undefined) {
      const id = normaliseIdentifier(raw, type, country);
      const token = tokenOf(key, id.type, id.value);
      e = { id, token, sealed: sealIdentifier(key, token, id.value).toString('base64') };
      if (m.size >= this.capacity) {
        const oldest = m.keys().next();
        if (!oldest.done) m.delete(oldest.value);
      }
      m.set(k, e);
    }
    return e;
  }

  private normalised(raw: string, type: IdentifierType, country: string | null): NormalisedIdentifier {
    const k = `${type}|${country ?? ''}|${raw}`;
    let n = this.plain.get(k);
    if (n === undefined) {
      n = normaliseIdentifier(raw, type, country);
      if (this.plain.size >= this.capacity) {
        const oldest = this.plain.keys().next();
        if (!oldest.done) this.plain.delete(oldest.value);
      }
      this.plain.set(k, n);
    }
    return n;
  }

  private monthDate(month: string): string {
    let d = this.monthDates.get(month);
    if (d === undefined) {
      d = monthDateOf(month);
      this.monthDates.set(month, d);
    }
    return d;
  }

  pseudonymise(e: CdrEvent, month: string, key: MonthKey | null, schemaId: number, src: SourcePosition, ingestedAt: number): PseudonymisedRecord {
    const country = e.destination_country ? e.destination_country.toUpperCase() : null;
    const senderType: IdentifierType = e.sender_type;
    const recipientType = recipientTypeOf(e.channel, e.recipient);
    let sender: NormalisedIdentifier;
    let recipient: NormalisedIdentifier;
    let senderToken = '';
    let recipientToken = '';
    const vault: VaultRow[] = [];
    const index: IndexRow[] = [];
    if (key) {
      const s = this.entry(key, e.sender, senderType, country);
      const r = this.entry(key, e.recipient, recipientType, country);
      sender = s.id;
      recipient = r.id;
      senderToken = s.token;
      recipientToken = r.token;
      const monthDate = this.monthDate(month);
      vault.push({ month: monthDate, token: s.token, id_type: sender.type, sealed: s.sealed, valid: sender.valid, first_seen: e.event_time });
      if (r.token !== s.token) vault.push({ month: monthDate, token: r.token, id_type: recipient.type, sealed: r.sealed, valid: recipient.valid, first_seen: e.event_time });
      index.push({ month: monthDate, token: s.token, role: 'sender', event_time: e.event_time, cdr_id: e.cdr_id, account_id: e.account_id });
      index.push({ month: monthDate, token: r.token, role: 'recipient', event_time: e.event_time, cdr_id: e.cdr_id, account_id: e.account_id });
    } else {
      sender = this.normalised(e.sender, senderType, country);
      recipient = this.normalised(e.recipient, recipientType, country);
    }
    const late = key === null;
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
      late,
      sender_valid: sender.valid,
      recipient_valid: recipient.valid,
      client_ip: e.client_ip ?? '',
      schema_id: schemaId,
      src_topic: src.topic,
      src_partition: src.partition,
      src_offset: src.offset,
      ingested_at: ingestedAt,
    };
    return {
      row,
      vault,
      index,
      published: {
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
        late,
        token_month: month,
      },
    };
  }
}

/**
 * What ingest's publish would cost if it sent the pseudonymised messages in slices: kafkajs groups each
 * send's messages per partition by copying the partition's array for every message (O(n²) per send).
 */
export function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
