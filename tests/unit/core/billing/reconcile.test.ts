import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decimalToMicros, numberRangeOf, PipelineError, reconcile } from '../../../../services/core/index.ts';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

describe('provider reconciliation', () => {
  it('reads invoice amounts exactly, without floating point', () => {
    assert.equal(decimalToMicros('12.345678', 'x'), 12_345_678);
    assert.equal(decimalToMicros('0.1', 'x'), 100_000);
    assert.equal(decimalToMicros('-3', 'x'), -3_000_000);
    assert.equal(decimalToMicros('1234567.000001', 'x'), 1_234_567_000_001);
    // Past 2^53 micro-units as text, not through floating point; a line over a billion major units is refused.
    assert.equal(decimalToMicros('999999999.999999', 'x'), 999_999_999_999_999);
    assert.equal(decimalToMicros('1000000000', 'x'), 10 ** 15);
    for (const bad of ['1e3', '1.2345678', '', 'abc', '1,5', '1000000000.000001', '9007199254.740993', '123456789012.345678'])
      assert.throws(
        () => decimalToMicros(bad, 'line 3: cost'),
        (e: unknown) => e instanceof PipelineError && /line 3: cost/.test(e.message),
      );
  });

  it('lists exactly the cells that differ', () => {
    const ours = [
      { day: '2026-10-01', destination_country: 'MY', currency: 'EUR', records: 10, cost_micros: 1000 },
      { day: '2026-10-01', destination_country: 'SG', currency: 'EUR', records: 5, cost_micros: 500 },
      { day: '2026-10-02', destination_country: 'MY', currency: 'EUR', records: 7, cost_micros: 700 },
      { day: '2026-10-03', destination_country: 'MY', currency: 'USD', records: 1, cost_micros: 100 },
    ];
    const invoice = [
      { day: '2026-10-01', destination_country: 'MY', currency: 'EUR', records: 10, cost_micros: 1000, line: 2 },
      { day: '2026-10-01', destination_country: 'SG', currency: 'EUR', records: 5, cost_micros: 600, line: 3 },
      { day: '2026-10-02', destination_country: 'MY', currency: 'EUR', records: 8, cost_micros: 700, line: 4 },
      { day: '2026-10-04', destination_country: 'TH', currency: 'EUR', records: null, cost_micros: 50, line: 5 },
    ];
    const diffs = reconcile(ours, invoice);
    assert.deepEqual(
      diffs.map((d) => [d.day, d.destination_country, d.currency, d.kind, d.delta_micros]),
      [
        ['2026-10-01', 'SG', 'EUR', 'cost_differs', 100],
        ['2026-10-02', 'MY', 'EUR', 'records_differ', 0],
        ['2026-10-03', 'MY', 'USD', 'missing_in_invoice', -100],
        ['2026-10-04', 'TH', 'EUR', 'missing_in_ours', 50],
      ],
    );
    assert.deepEqual(
      reconcile(
        ours,
        ours.map((o, i) => ({ ...o, line: i + 2 })),
      ),
      [],
    );
  });
});

describe('number ranges', () => {
  it('keep the country code and destination code and always leave at least four digits out', () => {
    const cases: [string, string][] = [
      ['+60177654321', '6017'],
      ['+14155550123', '1415'],
      ['+6591234567', '659123'],
      ['+442079460958', '4420'],
      ['+49301234567', '4930'],
      ['+19005550123', '1900'],
    ];
    for (const [number, range] of cases) {
      const n = parsePhoneNumberFromString(number)!;
      const r = numberRangeOf(n);
      assert.equal(r, range, number);
      assert.ok(number.slice(1).length - r.length >= 4, `${number}: at least 10,000 numbers in ${r}`);
    }
  });
});
