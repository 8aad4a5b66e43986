import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PipelineError,
  addMicros,
  exactMicros,
  parsePlanBook,
  rate,
  sealStatement,
  statementDigest,
  type RatingInput,
} from '../../../../services/core/index.ts';

const outOfRange = (e: unknown): boolean => e instanceof PipelineError && e.code === 'amount_out_of_range' && /nothing was rounded/.test(e.message);

describe('money figures: exact or refused', () => {
  it('takes every safe integer, as a number or as the engine’s digits', () => {
    for (const v of [0, -1, 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
      assert.equal(exactMicros(v, 'x'), v);
      assert.equal(exactMicros(String(v), 'x'), v);
    }
    assert.equal(exactMicros(9_007_199_254_740_991n, 'x'), Number.MAX_SAFE_INTEGER);
  });

  it('refuses what a number cannot hold exactly: digits past 2^53 − 1, a parsed number at or past 2^53, a fraction', () => {
    // JSON.parse('10999999999999989') is 10999999999999988: the engine's sum is no longer known, so it is refused.
    for (const v of [
      2 ** 53,
      JSON.parse('10999999999999989') as number,
      -(2 ** 53),
      1.5,
      Number.NaN,
      '9007199254740992',
      '-9007199254740992',
      '9300000000000000000',
    ])
      assert.throws(() => exactMicros(v, 'the EUR amount'), outOfRange, String(v));
    assert.throws(() => exactMicros('12a', 'x'), PipelineError);
    assert.throws(() => exactMicros(null, 'x'), outOfRange);
  });

  it('adds exactly up to 2^53 − 1 and refuses a sum past it, naming what was summed', () => {
    assert.equal(addMicros(4_503_599_627_370_495, 4_503_599_627_370_496, 'x'), Number.MAX_SAFE_INTEGER);
    assert.throws(
      () => addMicros(Number.MAX_SAFE_INTEGER, 1, 'the VND total'),
      (e: unknown) => outOfRange(e) && (e as Error).message.startsWith('the VND total: '),
    );
  });

  it('a statement past 2^53 is sealed all the same, marked exact: false (a close must not stop for one account)', () => {
    const line = { currency: 'VND', records: 1, segments: 1, duration_ms: 0, billable_seconds: 0, amount_micros: Number.MAX_SAFE_INTEGER, cost_micros: 0 };
    const adj = {
      adjustment_id: 'a',
      concerns_month: '2026-10',
      currency: 'VND',
      records: 1,
      segments: 1,
      amount_micros: 5,
      cost_micros: 0,
      reason: 'late_records',
      final: true,
    };
    const body = { account_id: 'a', month: '2026-11', status: 'closed' as const, closed_at: null, closed_by: null, unrated_records: 0 };
    const past = sealStatement({ ...body, lines: [line], adjustments: [adj] });
    assert.equal(past.exact, false);
    assert.equal(past.digest, statementDigest(past), 'the mark is covered by the digest');
    const within = sealStatement({ ...body, lines: [line], adjustments: [] });
    assert.equal('exact' in within, false, 'an exact statement carries no mark: digests of statements sealed before stay the same');
    assert.equal(within.totals[0]?.total_micros, Number.MAX_SAFE_INTEGER);
  });

  it('rates a record whose price would pass 2^53 as unrated (amount_out_of_range), never at a rounded price', () => {
    const book = parsePlanBook(
      `plans:
  - id: dear
    version: 1
    active_from: 2026-01-01T00:00:00Z
    accounts: ["*"]
    currency: VND
    rates:
      - channel: sms
        country: "*"
        price: 1000000000000
        cost: 1
      - channel: voice
        country: "*"
        price: 1000000000000
        cost: 1
        first_increment_s: 1
        increment_s: 1
`,
      'test',
    );
    const base: RatingInput = {
      account_id: 'a',
      event_time: Date.UTC(2026, 5, 1),
      channel: 'sms',
      destination_country: 'VN',
      recipient_range: '',
      recipient_number_type: 'mobile',
      provider_id: 'p',
      segments: 9_007,
      duration_ms: 0,
      price: 0,
      cost: 0,
      currency: '',
    };
    // 9,007 × 10^12 is safe; 10,000 × 10^12 = 10^16 is not.
    const fits = rate(book, base);
    assert.equal(fits.rated && fits.amountMicros, 9_007_000_000_000_000);
    assert.deepEqual(rate(book, { ...base, segments: 10_000 }), { rated: false, reason: 'amount_out_of_range', planId: 'dear', planVersion: 1 });
    // A call whose price × seconds passes 2^53 although the price does not (found in review: off by one micro-unit).
    assert.deepEqual(rate(book, { ...base, channel: 'voice', segments: 1, duration_ms: 9_100_000 }), {
      rated: false,
      reason: 'amount_out_of_range',
      planId: 'dear',
      planVersion: 1,
    });
    // A week-long call at 10^12 per minute: 1.008 × 10^16.
    assert.equal(rate(book, { ...base, channel: 'voice', segments: 1, duration_ms: 7 * 86_400_000 }).rated, false);
  });
});
