import { randomBytes, randomUUID } from 'node:crypto';
import { destroyPartition, type Storage } from '../clickhouse/index.ts';
import {
  PipelineError,
  normaliseIdentifier,
  type NormalisedIdentifier,
  deriveMonthKey,
  openIdentifier,
  sealIdentifier,
  unwrapMonthKey,
  wrapMonthKey,
  nullFieldsOf,
  type MonthKey,
} from '../../core/index.ts';
import { chTime, isoFromCh, lookupLive, restoredRecord, type PagePosition, type RecordMetadataRow, type RestoredRecord } from '../identity/index.ts';
import type { MonthKeyRing } from '../keys/index.ts';

/**
 * `held_records` keeps one copy per hold (partition = hold) of each record (ORDER BY cdr_id): a record two holds cover
 * is there twice. FINAL collapses equal sorting keys across partitions unless told not to, so one hold's copy hid the
 * other's (found from outside: the second hold's answer said "expired" after the live record was gone).
 */
const FINAL_WITHIN_HOLD = { do_not_merge_across_partitions_select_final: 1 } as const;

/**
 * The values a hold's identifier (as sealed when the hold was placed) is stored under now: itself, and — for a phone
 * number the metadata does not know, sealed with its separators by a hold placed before 2026-12-04 — the value ingest
 * gives it since (`+44 7700 900123` → `+447700900123`), so the hold still finds and preserves every record.
 */
function heldValues(type: string, value: string): string[] {
  if (type !== 'msisdn') return [value];
  // Only to another unreadable form: a spelling held as sent (`identifier.as_sent`, `0044 7911 123456` flagged under
  // its destination) must not grow, read without a country, into a valid number — someone else's records (found in
  // review: a hold placed with as_sent copied a GB subscriber's records at the next retention pass).
  const now = normaliseIdentifier(value, 'msisdn');
  return now.value === value || now.valid ? [value] : [value, now.value];
}

/**
 * Legal holds (privacy notice section 11). A hold names a case reference, one identifier and a time
 * range. Placing it copies the matching records, with both parties' identifiers, into `held_records`,
 * sealed under a key of the hold (wrapped under the master key in `hold_keys`), so the normal retention
 * pass can still delete everything else on time. Every pass re-syncs active holds before it drops a
 * month, so records that arrive after the hold was placed are preserved too. Releasing a hold makes its
 * copy and its key go in the next pass. Every step is recorded in `legal_hold_events`.
 */
export type HoldState = 'active' | 'released' | 'purged';

export interface HoldIdentifierInput {
  readonly type: 'msisdn' | 'email';
  readonly value: string;
  readonly country?: string | undefined;
}

export interface PlaceHoldInput {
  readonly caseReference: string;
  readonly reason: string;
  readonly identifier: HoldIdentifierInput;
  readonly from: number;
  readonly to: number;
  readonly actor: string;
  /** The law forbids telling the data subject about this hold (a data-subject export lists it as withheld). */
  readonly confidential?: boolean;
}

export interface LegalHold {
  readonly hold_id: string;
  readonly case_reference: string;
  readonly reason: string;
  readonly id_type: string;
  readonly from: string;
  readonly to: string;
  readonly state: HoldState;
  readonly placed_at: string;
  readonly placed_by: string;
  readonly released_at: string | null;
  readonly released_by: string;
  readonly purged_at: string | null;
  readonly confidential: boolean;
}

interface HoldRow {
  hold_id: string;
  case_reference: string;
  reason: string;
  id_type: string;
  identifier_sealed: string;
  from_time: string;
  to_time: string;
  state: HoldState;
  placed_at: string;
  placed_by: string;
  released_at: string | null;
  released_by: string;
  purged_at: string | null;
  confidential: boolean | number;
  version: string;
}

export class HoldError extends PipelineError {}

export class LegalHolds {
  constructor(
    private readonly storage: Storage,
    private readonly keyRing: MonthKeyRing,
    private readonly masterKey: Buffer,
    private readonly clock: () => number = Date.now,
  ) {}

  async place(input: PlaceHoldInput, normalised?: NormalisedIdentifier): Promise<{ hold: LegalHold; copied: number; expiredMonths: string[] }> {
    if (!(input.to > input.from)) throw new HoldError('bad_request', 'hold range: "to" must be after "from"');
    if (input.caseReference.trim() === '') throw new HoldError('bad_request', 'case_reference: missing');
    const id = normalised ?? normaliseIdentifier(input.identifier.value, input.identifier.type, input.identifier.country?.toUpperCase());
    const holdId = `hold-${randomUUID()}`;
    const raw = randomBytes(32);
    const holdKey = deriveMonthKey(`hold:${holdId}`, holdId, raw);
    const now = this.clock();
    await this.storage.insert('hold_keys', [{ hold_id: holdId, wrapped_key: wrapMonthKey(this.masterKey, `hold:${holdId}`, raw), created_at: now }]);
    raw.fill(0);
    const row: HoldRow = {
      hold_id: holdId,
      case_reference: input.caseReference,
      reason: input.reason,
      id_type: id.type,
      identifier_sealed: sealIdentifier(holdKey, 'identifier', id.value).toString('base64'),
      from_time: chTime(input.from),
      to_time: chTime(input.to),
      state: 'active',
      placed_at: chTime(now),
      placed_by: input.actor,
      released_at: null,
      released_by: '',
      purged_at: null,
      confidential: input.confidential ?? false,
      version: String(now * 10),
    };
    await this.storage.insert('legal_holds', [row]);
    await this.event(holdId, 'placed', input.actor, `case ${input.caseReference}`);
    const { copied, expiredMonths } = await this.syncWith(row, holdKey, id);
    return { hold: toHold(row), copied, expiredMonths };
  }

  async release(holdId: string, actor: string): Promise<LegalHold> {
    const row = await this.row(holdId);
    if (!row) throw new HoldError('not_found', `no legal hold ${holdId}`);
    // Releasing twice is harmless: the hold stays as the first release left it.
    if (row.state !== 'active') return toHold(row);
    const now = this.clock();
    const released: HoldRow = {
      ...row,
      state: 'released',
      released_at: chTime(now),
      released_by: actor,
      version: String(Math.max(Number(row.version) + 1, now * 10)),
    };
    await this.storage.insert('legal_holds', [released]);
    await this.event(holdId, 'released', actor, 'held copy goes in the next retention pass');
    return toHold(released);
  }

  async list(): Promise<LegalHold[]> {
    return (await this.rows()).map(toHold);
  }

  async get(holdId: string): Promise<LegalHold | undefined> {
    const row = await this.row(holdId);
    return row ? toHold(row) : undefined;
  }

  /**
   * Copies the stored records of every active hold that are not yet held; returns how many. `passNow`: the retention
   * pass's clock, just before it destroys anything — records of months whose window closed at that time but that are
   * still stored (they arrived after the last copy) are copied too, since the pass is about to destroy them.
   */
  async syncActive(passNow?: number): Promise<number> {
    let total = 0;
    for (const row of (await this.rows()).filter((r) => r.state === 'active')) {
      const key = await this.holdKey(row.hold_id);
      if (!key) continue;
      const held = openIdentifier(key, 'identifier', Buffer.from(row.identifier_sealed, 'base64'));
      for (const value of heldValues(row.id_type, held)) {
        const id: NormalisedIdentifier = { type: row.id_type as NormalisedIdentifier['type'], value, valid: true, country: '' };
        total += (await this.syncWith(row, key, id, passNow)).copied;
      }
    }
    return total;
  }

  /** Active holds whose range overlaps [from, to). */
  async activeOverlapping(from: number, to: number): Promise<LegalHold[]> {
    return (await this.list()).filter((h) => h.state === 'active' && Date.parse(h.from) < to && Date.parse(h.to) > from);
  }

  /** Records preserved by active holds for this identifier in [from, to), identifiers restored. */
  async heldRecords(id: NormalisedIdentifier, from: number, to: number): Promise<RestoredRecord[]> {
    const out: RestoredRecord[] = [];
    for (const row of (await this.rows()).filter((r) => r.state === 'active' && r.id_type === id.type)) {
      const key = await this.holdKey(row.hold_id);
      if (!key) continue;
      if (!heldValues(row.id_type, openIdentifier(key, 'identifier', Buffer.from(row.identifier_sealed, 'base64'))).includes(id.value)) continue;
      const rows = await this.storage.query<HeldRow>(
        `SELECT * FROM ${this.storage.table('held_records')} FINAL WHERE hold_id = {h:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')} ORDER BY event_time, cdr_id`,
        { h: row.hold_id, from: chTime(from), to: chTime(to) },
        FINAL_WITHIN_HOLD,
      );
      for (const r of rows) out.push(fromHeld(r, key));
    }
    return out;
  }

  /** Active holds about this identifier, with their keys (answers from held copies). */
  async activeFor(id: NormalisedIdentifier): Promise<{ hold: LegalHold; key: MonthKey }[]> {
    const out: { hold: LegalHold; key: MonthKey }[] = [];
    for (const row of (await this.rows()).filter((r) => r.state === 'active' && r.id_type === id.type)) {
      const key = await this.holdKey(row.hold_id);
      if (!key) continue;
      if (heldValues(row.id_type, openIdentifier(key, 'identifier', Buffer.from(row.identifier_sealed, 'base64'))).includes(id.value))
        out.push({ hold: toHold(row), key });
    }
    return out;
  }

  /** Holds about this identifier that still hold a copy (active or released, not purged): for data-subject access. */
  async about(id: NormalisedIdentifier): Promise<LegalHold[]> {
    const out: LegalHold[] = [];
    for (const row of (await this.rows()).filter((r) => r.state !== 'purged' && r.id_type === id.type && r.identifier_sealed !== '')) {
      const key = await this.holdKey(row.hold_id);
      if (key && heldValues(row.id_type, openIdentifier(key, 'identifier', Buffer.from(row.identifier_sealed, 'base64'))).includes(id.value))
        out.push(toHold(row));
    }
    return out;
  }

  /** How many held records of a hold lie in [from, to). */
  async countHeld(holdId: string, from: number, to: number): Promise<number> {
    const rows = await this.storage.query<{ n: string }>(
      `SELECT uniqExact(cdr_id) n FROM ${this.storage.table('held_records')} WHERE hold_id = {h:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}`,
      { h: holdId, from: chTime(from), to: chTime(to) },
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** One page of a hold's records in [from, to), in (event_time, cdr_id) order, identifiers restored. */
  async pageHeld(holdId: string, key: MonthKey, from: number, to: number, after: PagePosition | undefined, limit: number): Promise<RestoredRecord[]> {
    const rows = await this.storage.query<HeldRow>(
      `SELECT * FROM ${this.storage.table('held_records')} FINAL
       WHERE hold_id = {h:String} AND event_time >= {from:DateTime64(3, 'UTC')} AND event_time < {to:DateTime64(3, 'UTC')}
         AND (event_time, cdr_id) > ({at:DateTime64(3, 'UTC')}, {id:String})
       ORDER BY event_time, cdr_id LIMIT {n:UInt32}`,
      { h: holdId, from: chTime(from), to: chTime(to), at: after ? after.eventTime : chTime(0), id: after ? after.cdrId : '', n: limit },
      FINAL_WITHIN_HOLD,
    );
    return rows.map((r) => fromHeld(r, key));
  }

  /** Released holds whose copy is still there: what the retention pass purges. */
  async releasedUnpurged(): Promise<LegalHold[]> {
    return (await this.list()).filter((h) => h.state === 'released');
  }

  /** Destroys a released hold's copy and key (called by the retention pass). */
  async purge(holdId: string, actor: string): Promise<{ rowsByMonth: Map<string, number>; keysDestroyed: number }> {
    const row = await this.row(holdId);
    if (!row || row.state !== 'released') throw new HoldError('invariant_broken', `hold ${holdId} is not released`);
    const rowsByMonth = await this.heldRowsByMonth(holdId);
    await destroyPartition(this.storage, 'held_records', partitionOf(holdId));
    const keys = await this.storage.query<{ n: string }>(`SELECT count() n FROM ${this.storage.table('hold_keys')} WHERE hold_id = {h:String}`, { h: holdId });
    await destroyPartition(this.storage, 'hold_keys', partitionOf(holdId));
    const now = this.clock();
    await this.storage.insert('legal_holds', [
      { ...row, state: 'purged', purged_at: chTime(now), identifier_sealed: '', version: String(Math.max(Number(row.version) + 1, now * 10)) },
    ]);
    await this.event(holdId, 'purged', actor, 'held copy and hold key destroyed');
    return { rowsByMonth, keysDestroyed: Number(keys[0]?.n ?? 0) > 0 ? 1 : 0 };
  }

  async heldRowsByMonth(holdId: string): Promise<Map<string, number>> {
    const rows = await this.storage.query<{ m: string; n: string }>(
      `SELECT formatDateTime(event_time, '%Y-%m') m, count() n FROM ${this.storage.table('held_records')} FINAL WHERE hold_id = {h:String} GROUP BY m ORDER BY m`,
      { h: holdId },
      FINAL_WITHIN_HOLD,
    );
    return new Map(rows.map((r) => [r.m, Number(r.n)]));
  }

  private async syncWith(row: HoldRow, holdKey: MonthKey, id: NormalisedIdentifier, passNow?: number): Promise<{ copied: number; expiredMonths: string[] }> {
    const from = Date.parse(isoFromCh(row.from_time));
    const to = Date.parse(isoFromCh(row.to_time));
    const live =
      passNow === undefined
        ? await lookupLive(this.storage, this.keyRing, id, from, to, this.clock())
        : await lookupLive(this.storage, this.keyRing, id, from, to, passNow, { untilDestroyed: true });
    const already = new Set(
      (
        await this.storage.query<{ cdr_id: string }>(`SELECT cdr_id FROM ${this.storage.table('held_records')} WHERE hold_id = {h:String}`, { h: row.hold_id })
      ).map((r) => r.cdr_id),
    );
    const now = this.clock();
    const copies = live.records
      .filter((r) => !already.has(r.cdr_id))
      .map((r) => ({
        hold_id: row.hold_id,
        cdr_id: r.cdr_id,
        event_time: Date.parse(r.event_time),
        account_id: r.account_id,
        channel: r.channel,
        direction: r.direction,
        sender_type: r.sender_type,
        recipient_type: r.recipient_type,
        sender_sealed: sealIdentifier(holdKey, `${r.cdr_id}:sender`, r.sender).toString('base64'),
        recipient_sealed: sealIdentifier(holdKey, `${r.cdr_id}:recipient`, r.recipient).toString('base64'),
        status: r.status,
        duration_ms: r.duration_ms ?? 0,
        provider_id: r.provider_id,
        destination_country: r.destination_country ?? '',
        mcc: r.mcc ?? '',
        mnc: r.mnc ?? '',
        segments: r.segments,
        copied_at: now,
        // The copy keeps which fields the record did not have, as the live row does (error_code and client_ip are not copied).
        null_fields: nullFieldsOf({ ...r, error_code: '', client_ip: '' }),
      }));
    if (copies.length > 0) {
      await this.storage.insert('held_records', copies);
      await this.event(row.hold_id, 'copied', 'system', `${copies.length} records preserved`);
    }
    return { copied: copies.length, expiredMonths: live.expiredMonths };
  }

  /** A hold's key while it exists (its copy is readable), undefined once the hold is purged. */
  keyOf(holdId: string): Promise<MonthKey | undefined> {
    return this.holdKey(holdId);
  }

  private async holdKey(holdId: string): Promise<MonthKey | undefined> {
    const rows = await this.storage.query<{ wrapped_key: string }>(
      `SELECT wrapped_key FROM ${this.storage.table('hold_keys')} WHERE hold_id = {h:String} LIMIT 1`,
      { h: holdId },
    );
    const wrapped = rows[0]?.wrapped_key;
    if (!wrapped) return undefined;
    return deriveMonthKey(`hold:${holdId}`, holdId, unwrapMonthKey(this.masterKey, `hold:${holdId}`, wrapped));
  }

  private async rows(): Promise<HoldRow[]> {
    return this.storage.query<HoldRow>(`SELECT * FROM ${this.storage.table('legal_holds')} FINAL ORDER BY placed_at, hold_id`);
  }

  private async row(holdId: string): Promise<HoldRow | undefined> {
    const rows = await this.storage.query<HoldRow>(`SELECT * FROM ${this.storage.table('legal_holds')} FINAL WHERE hold_id = {h:String}`, { h: holdId });
    return rows[0];
  }

  private lastEventAt = 0;

  /** Appends to the hold's lifecycle; times are strictly increasing so the order is unambiguous. */
  private async event(holdId: string, event: string, actor: string, detail: string): Promise<void> {
    this.lastEventAt = Math.max(this.clock(), this.lastEventAt + 1);
    await this.storage.insert('legal_hold_events', [{ hold_id: holdId, at: this.lastEventAt, event, actor, detail }]);
  }
}

interface HeldRow extends RecordMetadataRow {
  hold_id: string;
  sender_sealed: string;
  recipient_sealed: string;
}

function fromHeld(r: HeldRow, key: MonthKey): RestoredRecord {
  const sender = openIdentifier(key, `${r.cdr_id}:sender`, Buffer.from(r.sender_sealed, 'base64'));
  const recipient = openIdentifier(key, `${r.cdr_id}:recipient`, Buffer.from(r.recipient_sealed, 'base64'));
  return restoredRecord(r, sender, recipient, 'held', r.hold_id);
}

function toHold(r: HoldRow): LegalHold {
  return {
    hold_id: r.hold_id,
    case_reference: r.case_reference,
    reason: r.reason,
    id_type: r.id_type,
    from: isoFromCh(r.from_time),
    to: isoFromCh(r.to_time),
    state: r.state,
    placed_at: isoFromCh(r.placed_at),
    placed_by: r.placed_by,
    released_at: r.released_at ? isoFromCh(r.released_at) : null,
    released_by: r.released_by,
    purged_at: r.purged_at ? isoFromCh(r.purged_at) : null,
    confidential: r.confidential === true || r.confidential === 1,
  };
}

/** The partition literal of a hold (partitions are by hold_id). Hold ids are ours; anything else is refused. */
function partitionOf(holdId: string): string {
  if (!/^hold-[0-9a-f-]{36}$/.test(holdId)) throw new HoldError('invariant_broken', 'malformed hold id');
  return `'${holdId}'`;
}
