import type { PseudonymisedValue, Rating, RatingInput, RowShape } from '../core/index.ts';

/** One row of `billing_rated` (migration 8): the rating inputs of a record, its rating, and where it came from. */
export interface RatedRow {
  account_id: string;
  /** Epoch milliseconds (DateTime64(3, 'UTC')). */
  event_time: number;
  cdr_id: string;
  revision: number;
  channel: string;
  direction: string;
  status: string;
  destination_country: string;
  recipient_range: string;
  recipient_number_type: string;
  provider_id: string;
  segments: number;
  duration_ms: number;
  event_price: number;
  event_cost: number;
  event_currency: string;
  rated: boolean;
  unrated_reason: string;
  currency: string;
  amount_micros: number;
  cost_micros: number;
  billable_seconds: number;
  plan_id: string;
  plan_version: number;
  basis: string;
  rated_at: number;
  src_partition: number;
  src_offset: string;
}

/**
 * `billing_rated`'s insert shape: RowBinary into the embedded engine, JSONCompactEachRow tuples into a server, instead
 * of JSON objects the engine parses (benchmarks/results/ab-billing-rowbinary-2026-12-05.md). A unit test keeps columns
 * and values in step with RatedRow; an integration test keeps the types in step with the table.
 */
export const RATED_SHAPE: RowShape<RatedRow> = {
  columns: [
    'account_id',
    'event_time',
    'cdr_id',
    'revision',
    'channel',
    'direction',
    'status',
    'destination_country',
    'recipient_range',
    'recipient_number_type',
    'provider_id',
    'segments',
    'duration_ms',
    'event_price',
    'event_cost',
    'event_currency',
    'rated',
    'unrated_reason',
    'currency',
    'amount_micros',
    'cost_micros',
    'billable_seconds',
    'plan_id',
    'plan_version',
    'basis',
    'rated_at',
    'src_partition',
    'src_offset',
  ],
  types: [
    'String',
    'DateTime64',
    'String',
    'UInt64',
    'String',
    'String',
    'String',
    'String',
    'String',
    'String',
    'String',
    'UInt32',
    'UInt64',
    'Int64',
    'Int64',
    'String',
    'Bool',
    'String',
    'String',
    'Int64',
    'Int64',
    'UInt64',
    'String',
    'UInt32',
    'String',
    'DateTime64',
    'Int32',
    'String',
  ],
  tuple: (r) => [
    r.account_id,
    r.event_time,
    r.cdr_id,
    r.revision,
    r.channel,
    r.direction,
    r.status,
    r.destination_country,
    r.recipient_range,
    r.recipient_number_type,
    r.provider_id,
    r.segments,
    r.duration_ms,
    r.event_price,
    r.event_cost,
    r.event_currency,
    r.rated,
    r.unrated_reason,
    r.currency,
    r.amount_micros,
    r.cost_micros,
    r.billable_seconds,
    r.plan_id,
    r.plan_version,
    r.basis,
    r.rated_at,
    r.src_partition,
    r.src_offset,
  ],
};

/** What rating reads, as `billing_rated` keeps it (a re-rate rates the stored inputs again). */
export type RatingInputRow = Pick<
  RatedRow,
  | 'account_id'
  | 'event_time'
  | 'cdr_id'
  | 'channel'
  | 'direction'
  | 'status'
  | 'destination_country'
  | 'recipient_range'
  | 'recipient_number_type'
  | 'provider_id'
  | 'segments'
  | 'duration_ms'
  | 'event_price'
  | 'event_cost'
  | 'event_currency'
  | 'src_partition'
  | 'src_offset'
>;

export function inputOf(e: PseudonymisedValue): Omit<RatingInputRow, 'src_partition' | 'src_offset'> {
  return {
    account_id: e.account_id,
    event_time: e.event_time,
    cdr_id: e.cdr_id,
    channel: e.channel,
    direction: e.direction,
    status: e.status,
    destination_country: e.destination_country,
    recipient_range: e.recipient_range,
    recipient_number_type: e.recipient_number_type,
    provider_id: e.provider_id,
    segments: e.segments,
    duration_ms: e.duration_ms,
    event_price: e.price,
    event_cost: e.cost,
    event_currency: e.currency,
  };
}

/**
 * Rating reads the stored inputs under the event's field names. An explicit literal, as in `rowOf`: a spread with
 * fields added was a quarter of billing's main thread (benchmarks/results/ab-billing-rowbinary-2026-12-05.md).
 */
export function ratingInputOf(r: Omit<RatingInputRow, 'src_partition' | 'src_offset'>): RatingInput {
  return {
    account_id: r.account_id,
    event_time: r.event_time,
    channel: r.channel,
    destination_country: r.destination_country,
    recipient_range: r.recipient_range,
    recipient_number_type: r.recipient_number_type,
    provider_id: r.provider_id,
    segments: r.segments,
    duration_ms: r.duration_ms,
    price: r.event_price,
    cost: r.event_cost,
    currency: r.event_currency,
  };
}

export function rowOf(
  input: Omit<RatingInputRow, 'src_partition' | 'src_offset'>,
  rating: Rating,
  revision: number,
  ratedAt: number,
  partition: number,
  offset: string,
): RatedRow {
  // Every field named, no spread: `{ ...input, … }` took V8's generic copy, a quarter of billing's main thread in a
  // profile (benchmarks/results/ab-billing-rowbinary-2026-12-05.md).
  return {
    account_id: input.account_id,
    event_time: input.event_time,
    cdr_id: input.cdr_id,
    revision,
    channel: input.channel,
    direction: input.direction,
    status: input.status,
    destination_country: input.destination_country,
    recipient_range: input.recipient_range,
    recipient_number_type: input.recipient_number_type,
    provider_id: input.provider_id,
    segments: input.segments,
    duration_ms: input.duration_ms,
    event_price: input.event_price,
    event_cost: input.event_cost,
    event_currency: input.event_currency,
    rated: rating.rated,
    unrated_reason: rating.rated ? '' : rating.reason,
    currency: rating.rated ? rating.currency : '',
    amount_micros: rating.rated ? rating.amountMicros : 0,
    cost_micros: rating.rated ? rating.costMicros : 0,
    billable_seconds: rating.rated ? rating.billableSeconds : 0,
    plan_id: rating.planId,
    plan_version: rating.planVersion,
    basis: rating.rated ? rating.basis : '',
    rated_at: ratedAt,
    src_partition: partition,
    src_offset: offset,
  };
}

export function ratedRowOf(e: PseudonymisedValue, rating: Rating, revision: number, ratedAt: number, partition: number, offset: string): RatedRow {
  return rowOf(inputOf(e), rating, revision, ratedAt, partition, offset);
}
