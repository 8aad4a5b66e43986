import type { CdrEvent, MonthKey, PipelineErrorCode, RegistryAnswers } from '../core/index.ts';
import {
  CalendarMemo,
  CDR_SHAPE,
  cdrRowIdentity,
  identifiersExpired,
  monthStartOf,
  PipelineError,
  Pseudonymiser,
  RecentScopedIds,
  sanitiseCdr,
  validateCdr,
  VAULT_SHAPE,
  vaultRowIdentity,
} from '../core/index.ts';
import { RowsEncoder, type EncodedRows } from '../platform/clickhouse/encodedRows.ts';
import { PackedStrings, type PackedMessages } from '../platform/kafka/packedMessages.ts';
import { decodeCdrEvent, decodeCdrEventIn, framedWriter, PSEUDONYMISED_SCHEMA_ID, useRegistryAnswers } from '../platform/schemas/index.ts';
import { EventLoopSlice } from '../platform/runtime/eventLoopSlice.ts';
import { sealerFactory } from '../platform/keys/nativeSealer.ts';

/**
 * Ingest's per-record work on one batch, in two steps around the main thread's decisions:
 *
 * 1. `screen`: decode, validate, sanitise. The main thread gets back what it decides on — each valid record's
 *    cdr_id, event time and account — and the records that go to the DLQ.
 * 2. `transform`: for the records the main thread keeps (not duplicates), with the month keys it hands over:
 *    normalise, tokenise, seal, Avro for cdr.pseudonymised, and the cdr and vault rows serialised for the store.
 *
 * It runs in a prepare worker thread (prepareWorker.ts; `CDR_INGEST_WORKERS`) or, with no workers, on the main
 * thread (InlineWork in preparePool.ts). Everything it returns is plain data and bytes: no identifier leaves it
 * except inside the Avro values and the rows (as before), and key material only ever comes in.
 */

export type ShapedFormat = EncodedRows['format'];

/** Transformed batches whose vault rows wait for `written` (more in flight at once than partitions per process). */
const MAX_BATCHES_AWAITING_WRITE = 256;

/** A record for the DLQ as the work describes it; the main thread holds the Kafka message itself. */
export interface RecordFailure {
  /** Position of the record in the batch's messages. */
  readonly index: number;
  readonly code: PipelineErrorCode;
  readonly message: string;
  readonly stage: 'VALUE_CONVERTER' | 'TRANSFORMATION';
  /** Decoded and its identifier window has closed: the DLQ gets a stub (deadLetters.ts). */
  readonly identifiersExpired: boolean;
}

/** A batch's message values: one buffer, each value's end offset, and which values were null. */
export interface PackedValues {
  readonly bytes: Uint8Array;
  readonly ends: Uint32Array;
  readonly nulls: readonly number[];
}

export interface ScreenRequest {
  readonly batch: number;
  readonly values: PackedValues;
  readonly now: number;
  /** What the schema registry said of the batch's schema ids (a few small documents): given to this thread's codec. */
  readonly registry?: RegistryAnswers;
}

export interface ScreenReply {
  /** For each valid record, in message order: its position in the batch's messages. */
  readonly indices: Uint32Array;
  readonly cdrIds: readonly string[];
  readonly eventTimes: Float64Array;
  readonly failures: readonly RecordFailure[];
  /** Optional fields dropped as unusable (counted in a metric). */
  readonly dropped: { readonly error_code: number; readonly client_ip: number };
}

/**
 * A month's key for one transform, or null (write that month's records without identifiers). A worker is handed the
 * key with every transform (64 bytes) and keeps the copy it already holds when the bytes are the same, so its caches
 * live on; nothing depends on the pool remembering what a worker holds.
 */
export type KeyGrant = MonthKey | null;

export interface TransformRequest {
  readonly batch: number;
  /** Positions (into the screened records) of the records to store, in order. */
  readonly chosen: Uint32Array;
  /** Their Kafka offsets, same order. */
  readonly offsets: readonly string[];
  readonly topic: string;
  readonly partition: number;
  readonly now: number;
  readonly keys: readonly (readonly [month: string, key: KeyGrant])[];
}

export interface TransformReply {
  readonly failures: readonly RecordFailure[];
  readonly late: number;
  readonly cdr: EncodedRows;
  /** The batch's vault rows, each (month, token) once and none this work knows written (see `written`). */
  readonly vault: EncodedRows;
  /**
   * The messages for cdr.pseudonymised, packed (Avro value, key = account_id, header cdr_id), and for each the screened
   * position it belongs to.
   */
  readonly published: PackedMessages & { readonly positions: Uint32Array };
}

export interface BatchWorkOptions {
  /** Most identifiers this work keeps derived (its share of CDR_INGEST_IDENTIFIER_CACHE). */
  readonly identifierCache: number;
  /** Most vault rows it remembers as written, so a known subscriber's row is not sent again (CDR_INGEST_VAULT_RECENT). */
  readonly vaultRecent: number;
  readonly maxFutureSkewMs: number;
  readonly format: ShapedFormat;
  /** The keys handed over are this work's own copies (a worker thread): zero them when they are dropped. */
  readonly ownsKeys: boolean;
  /** Give the event loop a turn every this many ms (on the main thread under `cdr start`); unset: never. */
  readonly sliceMs?: number;
  /** Who tokenises and seals new identifiers (`sealerFor` on the main thread decided; ADR 0040). */
  readonly sealer: 'native' | 'js';
}

interface Screened {
  readonly events: CdrEvent[];
  readonly schemaIds: number[];
  readonly indices: Uint32Array;
}

export class BatchWork {
  private readonly pseudonymiser: Pseudonymiser;
  private readonly keys = new Map<string, MonthKey>();
  /** A batch's records are mostly of one month: its key and window read without a Date per record. */
  private readonly calendar = new CalendarMemo();
  /** Months whose key was destroyed: a key for one of them is refused (it can only be a copy taken before). */
  private readonly forgotten = new Set<string>();
  private readonly batches = new Map<number, Screened>();
  /** (month, token) of vault rows known durable in the store. */
  private readonly vaultWritten: RecentScopedIds;
  /** Vault rows (month, token) of transformed batches, until the main thread says they are durable (`written`); the oldest go first. */
  private readonly vaultReturned = new Map<number, { months: string[]; tokens: string[] }>();

  constructor(private readonly opts: BatchWorkOptions) {
    this.pseudonymiser = new Pseudonymiser(opts.identifierCache, 'second-sight', sealerFactory(opts.sealer));
    this.vaultWritten = new RecentScopedIds(opts.vaultRecent);
  }

  /** Months with identifiers derived (and a sealer open) under their key, for tests. */
  get monthsDerived(): string[] {
    return this.pseudonymiser.monthsHeld;
  }

  /** Batches screened and not yet transformed or released (a leak shows here). */
  get batchesHeld(): number {
    return this.batches.size;
  }

  async screen(req: ScreenRequest): Promise<ScreenReply> {
    const { bytes, ends, nulls } = req.values;
    const now = req.now;
    if (req.registry) useRegistryAnswers(req.registry);
    // Per batch, not in the codec: the worker screens batches of several partitions side by side.
    const unreadable = req.registry?.unreadable?.length ? new Set(req.registry.unreadable) : undefined;
    const slice = new EventLoopSlice(this.opts.sliceMs ?? Number.POSITIVE_INFINITY);
    const isNull = new Set(nulls);
    const events: CdrEvent[] = [];
    const schemaIds: number[] = [];
    const indices: number[] = [];
    const failures: RecordFailure[] = [];
    const dropped = { error_code: 0, client_ip: 0 };
    const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let from = 0;
    for (let i = 0; i < ends.length; i++) {
      if (slice.spent()) await slice.pause();
      const start = from;
      const end = ends[i]!;
      from = end;
      let decoded: { event: CdrEvent; schemaId: number };
      try {
        decoded = isNull.has(i) ? decodeCdrEvent(null) : decodeCdrEventIn(all, start, end, unreadable);
      } catch (err) {
        failures.push(failureOf(i, err, 'decode_failed', 'VALUE_CONVERTER', false));
        continue;
      }
      try {
        validateCdr(decoded.event, { now, maxFutureSkewMs: this.opts.maxFutureSkewMs });
      } catch (err) {
        // Decoded: if its identifier window has closed, the DLQ gets a stub, not the identifiers (deadLetters.ts).
        failures.push(failureOf(i, err, 'validation_failed', 'TRANSFORMATION', windowClosed(decoded.event.event_time, now)));
        continue;
      }
      const { event, dropped: fields } = sanitiseCdr(decoded.event);
      for (const f of fields) dropped[f]++;
      events.push(event);
      schemaIds.push(decoded.schemaId);
      indices.push(i);
    }
    const screened: Screened = { events, schemaIds, indices: Uint32Array.from(indices) };
    this.batches.set(req.batch, screened);
    return {
      // A copy: the reply may be transferred to another thread, and the work keeps its own for `transform`.
      indices: Uint32Array.from(screened.indices),
      cdrIds: events.map((e) => e.cdr_id),
      eventTimes: Float64Array.from(events, (e) => e.event_time),
      failures,
      dropped,
    };
  }

  /** Forgets a screened batch that will not be transformed (the main thread gave up on it). */
  release(batch: number): void {
    this.batches.delete(batch);
  }

  async transform(req: TransformRequest): Promise<TransformReply> {
    const screened = this.batches.get(req.batch);
    if (!screened) throw new PipelineError('unexpected', `prepare work has no screened batch ${req.batch} (its worker restarted?)`);
    this.batches.delete(req.batch);
    const { now, chosen, offsets } = req;
    const slice = new EventLoopSlice(this.opts.sliceMs ?? Number.POSITIVE_INFINITY);
    // What was derived from the keys of months whose window has closed leaves memory now, even when the retention
    // pass that destroys those keys runs in another process (the ring never hands them out again).
    this.pseudonymiser.forgetExpired(now);
    for (const month of [...this.keys.keys()]) if (identifiersExpired(monthStartOf(month), now)) this.drop(month);
    const keys = this.grant(req.keys);

    // Each row is encoded as it is made: a batch's row objects would otherwise outlive the young generation together.
    const { format } = this.opts;
    const cdrRows = new RowsEncoder(CDR_SHAPE, format, cdrRowIdentity, chosen.length * 256);
    const vaultRows = new RowsEncoder(VAULT_SHAPE, format, vaultRowIdentity, chosen.length * 128);
    const vaultMonths: string[] = [];
    const vaultTokens: string[] = [];
    // token → month: no `${month}/${token}` string per lookup (tokens of different months differ anyway; a clash only
    // writes a row again, which the vault takes idempotently).
    const vaultInBatch = new Map<string, string>();
    const published = framedWriter(PSEUDONYMISED_SCHEMA_ID, chosen.length * 256);
    // The messages' keys and cdr_id headers as bytes too: the main thread queues them without an object each.
    const publishedKeys = new PackedStrings(chosen.length, 16);
    const publishedIds = new PackedStrings(chosen.length, 40);
    const positions: number[] = [];
    const failures: RecordFailure[] = [];
    let late = 0;
    let minOffset = Number.MAX_SAFE_INTEGER;
    let maxOffset = -1;
    for (let i = 0; i < chosen.length; i++) {
      if (slice.spent()) await slice.pause();
      const p = chosen[i]!;
      const event = screened.events[p];
      const offset = offsets[i];
      if (event === undefined || offset === undefined) throw new PipelineError('invariant_broken', `transform: no screened record at ${p}`);
      const month = this.calendar.monthOf(event.event_time);
      const key = this.calendar.identifiersExpired(event.event_time, now) ? null : (keys.get(month) ?? null);
      const rec = this.pseudonymiser.pseudonymise(event, month, key, screened.schemaIds[p]!, { topic: req.topic, partition: req.partition, offset }, now);
      try {
        published.append(rec.published);
      } catch (err) {
        // A record that decodes and validates but cannot be encoded for downstream goes to the DLQ alone.
        failures.push(failureOf(screened.indices[p]!, err, 'encode_failed', 'TRANSFORMATION', windowClosed(event.event_time, now)));
        continue;
      }
      publishedKeys.add(event.account_id);
      publishedIds.add(event.cdr_id);
      if (rec.row.late) late++;
      cdrRows.add(rec.row);
      const o = Number(offset);
      if (o < minOffset) minOffset = o;
      if (o > maxOffset) maxOffset = o;
      for (const v of rec.vault) {
        if (vaultInBatch.get(v.token) === v.month || this.vaultWritten.has(v.month, v.token)) continue;
        vaultInBatch.set(v.token, v.month);
        vaultRows.add(v);
        vaultMonths.push(v.month);
        vaultTokens.push(v.token);
      }
      positions.push(p);
    }

    let cdr = cdrRows.finish();
    // A value that does not fit its column (`rejected`): the insert is refused for its data and the loop splits the batch.
    if (cdr.count > 0) cdr = { ...cdr, offsets: { partition: req.partition, min: minOffset, max: maxOffset } };
    const vault = vaultRows.finish();
    this.vaultReturned.set(req.batch, { months: vaultMonths, tokens: vaultTokens });
    // Bounded: a batch given up after its transform never says `written`.
    if (this.vaultReturned.size > MAX_BATCHES_AWAITING_WRITE) this.vaultReturned.delete(this.vaultReturned.keys().next().value!);
    const values = published.finish();
    const keysOut = publishedKeys.finish();
    const idsOut = publishedIds.finish();
    return {
      failures,
      late,
      cdr,
      vault,
      published: {
        values: values.bytes,
        valueEnds: values.ends,
        keys: keysOut.bytes,
        keyEnds: keysOut.ends,
        headerName: 'cdr_id',
        headerValues: idsOut.bytes,
        headerEnds: idsOut.ends,
        positions: Uint32Array.from(positions),
      },
    };
  }

  /**
   * The batch's inserts are durable: its vault rows need not be sent again. Only then — a batch retried after a failed
   * insert must carry its vault rows again.
   */
  written(batch: number): void {
    const rows = this.vaultReturned.get(batch);
    if (!rows) return;
    this.vaultReturned.delete(batch);
    for (let i = 0; i < rows.tokens.length; i++) this.vaultWritten.add(rows.months[i]!, rows.tokens[i]!);
  }

  /** A month key was destroyed: drop it and everything derived from it. */
  forgetMonth(month: string): void {
    this.forgotten.add(month);
    this.drop(month);
    this.pseudonymiser.forgetMonth(month);
  }

  /** Drops every key (the work is ending). */
  close(): void {
    for (const month of [...this.keys.keys()]) this.drop(month);
    this.pseudonymiser.close();
    this.batches.clear();
    this.vaultReturned.clear();
  }

  private grant(grants: TransformRequest['keys']): Map<string, MonthKey | null> {
    const out = new Map<string, MonthKey | null>();
    for (const [month, grant] of grants) {
      if (grant === null) {
        this.drop(month);
        out.set(month, null);
        continue;
      }
      if (this.forgotten.has(month)) {
        this.discard(grant);
        throw new PipelineError('key_destroyed', `the key of ${month} was destroyed before this batch reached its prepare work; preparing it again without`);
      }
      const held = this.keys.get(month);
      if (held !== undefined && sameKey(held, grant)) {
        // The same key again (a worker gets a fresh copy each time): keep the one held, with its caches.
        if (held !== grant) this.discard(grant);
        out.set(month, held);
        continue;
      }
      this.drop(month);
      this.keys.set(month, grant);
      out.set(month, grant);
    }
    return out;
  }

  /** A copy handed over and not kept. */
  private discard(key: MonthKey): void {
    if (!this.opts.ownsKeys) return;
    key.tokenKey.fill(0);
    key.vaultKey.fill(0);
  }

  private drop(month: string): void {
    const key = this.keys.get(month);
    if (!key) return;
    this.keys.delete(month);
    this.discard(key);
    // What was derived under it goes with it, the native sealer's key schedules included (ADR 0040).
    this.pseudonymiser.forgetMonth(month);
  }
}

function sameKey(a: MonthKey, b: MonthKey): boolean {
  return a === b || (a.keyId === b.keyId && a.tokenKey.equals(b.tokenKey) && a.vaultKey.equals(b.vaultKey));
}

/** The identifier window of a record at `eventTime` has closed at `now` (false for a time that is not a number). */
export function windowClosed(eventTime: unknown, now: number): boolean {
  return typeof eventTime === 'number' && Number.isFinite(eventTime) && identifiersExpired(eventTime, now);
}

/**
 * A record's failure for the DLQ. A `dead-letter` PipelineError is kept as it is; anything else that is not a
 * PipelineError becomes `fallback`; a PipelineError that is not about the record (retry or stop) fails the batch.
 */
function failureOf(
  index: number,
  err: unknown,
  fallback: 'decode_failed' | 'validation_failed' | 'encode_failed',
  stage: RecordFailure['stage'],
  expired: boolean,
): RecordFailure {
  if (err instanceof PipelineError && err.disposition === 'dead-letter')
    return { index, code: err.code, message: err.message, stage, identifiersExpired: expired };
  if (err instanceof PipelineError) throw err;
  return { index, code: fallback, message: 'record could not be processed', stage, identifiersExpired: expired };
}
