/**
 * The high-cardinality data set of the benchmarks: with `subscribers: 'fresh'` nearly every record reaches a number
 * never seen before (one-time passwords, notifications), where the default pool of 20,000 repeats heavily; the same
 * seed still gives the same records.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planTraffic, type PlanOptions } from '../../../services/generator/trafficPlan.ts';

const base: PlanOptions = {
  count: 20_000,
  seed: 9,
  scenario: 'normal',
  duplicates: 0,
  malformed: 0,
  late: 0,
  startTime: Date.UTC(2026, 10, 1),
  eventsPerSecond: 2000,
};

function distinctParties(opts: PlanOptions): { distinct: number; records: number; firstIds: string[] } {
  const parties = new Set<string>();
  let records = 0;
  const firstIds: string[] = [];
  for (const m of planTraffic(opts)) {
    const e = m.event!;
    records++;
    if (firstIds.length < 5) firstIds.push(`${e.cdr_id}|${e.recipient}`);
    // The end user of the record: the recipient of a mobile-terminated message, the sender otherwise.
    parties.add(e.direction === 'mo' ? e.sender : e.recipient);
  }
  return { distinct: parties.size, records, firstIds };
}

describe('benchmark data sets', () => {
  it('fresh subscribers: at least 95% of records reach a distinct end user; the default pool of 20,000 repeats (about 60% distinct)', () => {
    const fresh = distinctParties({ ...base, subscribers: 'fresh' });
    const pooled = distinctParties(base);
    assert.ok(fresh.distinct >= 0.95 * fresh.records, `${fresh.distinct} of ${fresh.records}`);
    assert.ok(pooled.distinct < 0.7 * pooled.records, `${pooled.distinct} of ${pooled.records}`);
  });

  it('is deterministic by seed', () => {
    assert.deepEqual(
      distinctParties({ ...base, count: 50, subscribers: 'fresh' }).firstIds,
      distinctParties({ ...base, count: 50, subscribers: 'fresh' }).firstIds,
    );
  });
});
