import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { billableSeconds, parsePlanBook, rate, type RatingInput } from '../../../../services/core/index.ts';

const BOOK = parsePlanBook(
  `plans:
  - id: acme-special
    version: 1
    active_from: 2026-01-01T00:00:00Z
    accounts: [acme]
    currency: MYR
    rates:
      - channel: sms
        country: MY
        price: 10000
        cost: 7000
  - id: standard
    version: 1
    active_from: 2026-01-01T00:00:00Z
    active_to: 2026-07-01T00:00:00Z
    accounts: ["*"]
    currency: EUR
    rates:
      - channel: sms
        country: "*"
        price: 50000
        cost: 30000
      - channel: sms
        country: MY
        price: 20000
        cost: 10000
      - channel: sms
        country: MY
        prefix: "6017"
        price: 25000
        cost: 11000
      - channel: sms
        country: MY
        prefix: "601"
        provider: prov-b
        price: 22000
        cost: 9000
      - channel: voice
        country: "*"
        number_type: premium_rate
        price: 600000
        cost: 500000
        first_increment_s: 60
        increment_s: 60
      - channel: voice
        country: "*"
        price: 60000
        cost: 30000
        first_increment_s: 30
        increment_s: 6
        minimum_micros: 40000
  - id: standard
    version: 2
    active_from: 2026-07-01T00:00:00Z
    accounts: ["*"]
    currency: USD
    trust_event_price: true
    rates:
      - channel: sms
        country: "*"
        price: 1
        cost: 1
`,
  'rating-test.yaml',
);

const base: RatingInput = {
  account_id: 'shop',
  event_time: Date.parse('2026-03-10T12:00:00Z'),
  channel: 'sms',
  destination_country: 'MY',
  recipient_range: '6017',
  recipient_number_type: 'mobile',
  provider_id: 'prov-a',
  segments: 2,
  duration_ms: 0,
  price: 999,
  cost: 111,
  currency: 'SGD',
};

describe('rating', () => {
  it('takes the longest matching number-range prefix', () => {
    const r = rate(BOOK, base);
    assert.ok(r.rated);
    assert.deepEqual([r.currency, r.amountMicros, r.costMicros, r.planId, r.planVersion], ['EUR', 50_000, 22_000, 'standard', 1]);
    const other = rate(BOOK, { ...base, recipient_range: '6012' });
    assert.ok(other.rated && other.amountMicros === 40_000, 'country line for a range no prefix names');
    const provider = rate(BOOK, { ...base, recipient_range: '6012', provider_id: 'prov-b' });
    assert.ok(provider.rated && provider.amountMicros === 44_000, 'a prefix line for that provider');
    const elsewhere = rate(BOOK, { ...base, destination_country: 'SG', recipient_range: '659123' });
    assert.ok(elsewhere.rated && elsewhere.amountMicros === 100_000, 'the wildcard line');
  });

  it("uses an account's own plan before the plan for every account", () => {
    const r = rate(BOOK, { ...base, account_id: 'acme' });
    assert.ok(r.rated);
    assert.deepEqual([r.planId, r.currency, r.amountMicros], ['acme-special', 'MYR', 20_000]);
  });

  it('picks the plan version active at the event time, and trusts the event price where that version says so', () => {
    const later = rate(BOOK, { ...base, event_time: Date.parse('2026-07-01T00:00:00Z') });
    assert.ok(later.rated);
    assert.deepEqual([later.planVersion, later.currency, later.amountMicros, later.costMicros, later.basis], [2, 'SGD', 999, 111, 'event']);
    const justBefore = rate(BOOK, { ...base, event_time: Date.parse('2026-06-30T23:59:59.999Z') });
    assert.ok(justBefore.rated && justBefore.planVersion === 1);
    const noPrice = rate(BOOK, { ...base, event_time: Date.parse('2026-08-01T00:00:00Z'), currency: '' });
    assert.ok(noPrice.rated && noPrice.currency === 'USD' && noPrice.amountMicros === 2, 'a record without a price falls back to the rates');
  });

  it('says unrated, with the reason, when no plan or no rate applies — never a silent zero', () => {
    assert.deepEqual(rate(BOOK, { ...base, event_time: Date.parse('2025-12-31T23:59:59Z') }), { rated: false, reason: 'no_plan', planId: '', planVersion: 0 });
    const noRate = rate(BOOK, { ...base, channel: 'email' });
    assert.equal(noRate.rated, false);
    assert.equal(!noRate.rated && noRate.reason, 'no_rate');
  });

  it('bills voice by increments with a minimum charge, and premium-rate numbers by their own line', () => {
    const call = (ms: number, type = 'mobile') => rate(BOOK, { ...base, channel: 'voice', duration_ms: ms, segments: 0, recipient_number_type: type });
    const short = call(10_000);
    assert.ok(short.rated && short.billableSeconds === 30 && short.amountMicros === 40_000, 'minimum charge over 30 s at 60,000/min = 30,000');
    const long = call(61_500);
    assert.ok(long.rated && long.billableSeconds === 66 && long.amountMicros === 66_000 && long.costMicros === 33_000);
    const unanswered = call(0);
    assert.ok(unanswered.rated && unanswered.amountMicros === 0 && unanswered.billableSeconds === 0);
    const premium = call(61_000, 'premium_rate');
    assert.ok(premium.rated && premium.billableSeconds === 120 && premium.amountMicros === 1_200_000);
  });

  it('rounds per-second prices half up to the micro-unit', () => {
    assert.equal(billableSeconds(1, 1, 1), 1);
    assert.equal(billableSeconds(1001, 1, 1), 2);
    assert.equal(billableSeconds(59_999, 60, 60), 60);
    assert.equal(billableSeconds(60_001, 60, 60), 120);
    const book = parsePlanBook(
      'plans:\n  - id: p\n    version: 1\n    active_from: 2026-01-01T00:00:00Z\n    currency: EUR\n    rates:\n      - channel: voice\n        price: 100\n        cost: 50\n        first_increment_s: 1\n        increment_s: 1\n',
      'x',
    );
    const r = rate(book, { ...base, channel: 'voice', duration_ms: 1000 });
    assert.ok(r.rated && r.amountMicros === 2 && r.costMicros === 1, '100/60 = 1.67 → 2; 50/60 = 0.83 → 1');
  });
});
