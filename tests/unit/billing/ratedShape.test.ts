/**
 * billing_rated's insert shape against RatedRow: every field a column once, each value under its own column. (The
 * types against the real table: tests/integration/platform/rowBinary.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RATED_SHAPE, type RatedRow } from '../../../services/billing/ratedRow.ts';
import { rowBinary } from '../../../services/platform/clickhouse/rowBinary.ts';

// Every field of the interface (the compiler refuses a missing or an extra one), each value distinct.
const row: RatedRow = {
  account_id: 'acct-1',
  event_time: 1_764_000_000_001,
  cdr_id: 'c-1',
  revision: 3,
  channel: 'sms',
  direction: 'mt',
  status: 'delivered',
  destination_country: 'MY',
  recipient_range: '+6012',
  recipient_number_type: 'mobile',
  provider_id: 'prov-1',
  segments: 2,
  duration_ms: 4,
  event_price: -5,
  event_cost: 6,
  event_currency: 'EUR',
  rated: true,
  unrated_reason: 'none',
  currency: 'MYR',
  amount_micros: 7,
  cost_micros: 8,
  billable_seconds: 9,
  plan_id: 'plan-1',
  plan_version: 10,
  basis: 'per-segment',
  rated_at: 1_764_000_000_011,
  src_partition: 12,
  src_offset: '13',
};

describe('RATED_SHAPE (the billing_rated insert)', () => {
  it('names every field of a rated row exactly once, with a type for each', () => {
    assert.deepEqual([...RATED_SHAPE.columns].sort(), Object.keys(row).sort());
    assert.equal(new Set(RATED_SHAPE.columns).size, RATED_SHAPE.columns.length);
    assert.equal(RATED_SHAPE.types.length, RATED_SHAPE.columns.length);
  });

  it('puts each value under its own column', () => {
    const tuple = RATED_SHAPE.tuple(row);
    assert.equal(tuple.length, RATED_SHAPE.columns.length);
    RATED_SHAPE.columns.forEach((c, i) => assert.equal(tuple[i], row[c], c));
  });

  it('encodes a row as RowBinary (a negative price and the Int32 partition included)', () => {
    const bytes = rowBinary([row], RATED_SHAPE.columns, RATED_SHAPE.types, RATED_SHAPE.tuple);
    assert.ok(bytes.length > 100);
  });
});
