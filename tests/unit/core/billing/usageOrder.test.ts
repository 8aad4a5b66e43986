import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sortUsageRows } from '../../../../services/core/index.ts';

type Row = { account_id: string; month: string; destination_country: string; currency: string; records: number };
const row = (account_id: string, month: string, destination_country: string, records: number, currency = 'EUR'): Row => ({
  account_id,
  month,
  destination_country,
  currency,
  records,
});

describe('usage rows in order', () => {
  it('puts each adjustment row after the traffic rows of its account and period (found from outside: it came first)', () => {
    const rows = [
      row('b', '2026-11', 'MY', 4),
      row('a', '2026-11', '', 0), // the month's adjustments
      row('a', '2026-12', 'MY', 1),
      row('a', '2026-11', 'SG', 2),
      row('a', '2026-11', '', 1), // traffic without a country: first, as the store orders it
      row('a', '2026-11', 'MY', 3),
      row('b', '2026-11', '', 0, 'USD'),
      row('b', '2026-11', 'MY', 5, 'USD'),
    ];
    const keys = ['account_id', 'month', 'destination_country', 'currency'];
    const sorted = sortUsageRows([...rows], keys, new Set(['destination_country']));
    assert.deepEqual(
      sorted.map((r) => `${r.account_id} ${r.month} ${r.destination_country || '-'} ${r.currency} ${r.records}`),
      [
        'a 2026-11 - EUR 1',
        'a 2026-11 MY EUR 3',
        'a 2026-11 SG EUR 2',
        'a 2026-11 - EUR 0',
        'a 2026-12 MY EUR 1',
        'b 2026-11 MY EUR 4',
        'b 2026-11 MY USD 5',
        'b 2026-11 - USD 0',
      ],
    );
    // Grouped by month alone there is no split field: the adjustment row sorts as its key, after a traffic row of it.
    const plain = sortUsageRows([row('a', '2026-11', '', 0), row('a', '2026-11', '', 2)], ['account_id', 'month', 'currency'], new Set());
    assert.deepEqual(
      plain.map((r) => r.records),
      [2, 0],
    );
  });
});
