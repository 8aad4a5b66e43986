import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { firstAttackIndex, planTraffic, type PlanOptions } from '../../../services/generator/trafficPlan.ts';

const T0 = Date.UTC(2026, 11, 6, 9);
const base: PlanOptions = { count: 3_000, seed: 9, scenario: 'irsf', duplicates: 0, malformed: 0, late: 0, startTime: T0, eventsPerSecond: 100 };

describe('traffic plan: attack labels', () => {
  it('labels exactly the records the generator labels as an attack, with its pattern', () => {
    const gen = new TrafficGenerator({ seed: base.seed, scenario: base.scenario, startTime: T0, ratePerSecond: base.eventsPerSecond });
    const expected = new Map<string, string>();
    for (let i = 0; i < base.count; i++) {
      const g = gen.nextLabeled();
      if (g.attack) expected.set(g.event.cdr_id, g.attack.scenario);
    }
    const labelled = new Map([...planTraffic(base)].filter((m) => m.attack !== undefined).map((m) => [m.cdrId!, m.attack!]));
    assert.ok(expected.size > 100, `the irsf plan holds attacks (${expected.size})`);
    assert.deepEqual(labelled, expected);
  });

  it('labels no duplicate, malformed or late record, and no ordinary one', () => {
    const plan = [...planTraffic({ ...base, scenario: 'mixed', duplicates: 0.1, malformed: 0.05, late: 0.1 })];
    assert.ok(plan.some((m) => m.attack !== undefined));
    for (const m of plan) if (m.kind !== 'unique') assert.equal(m.attack, undefined, m.kind);
    assert.equal([...planTraffic({ ...base, scenario: 'normal' })].filter((m) => m.attack !== undefined).length, 0);
  });

  it('finds the first attack record of a scenario that dates its attacks in event time', () => {
    // range_scan's first scan starts 5 s of event time in: ~500 records at 100 a second, ~50,000 at 10,000.
    const slow = firstAttackIndex({ ...base, scenario: 'range_scan' }, 100_000);
    const fast = firstAttackIndex({ ...base, scenario: 'range_scan', eventsPerSecond: 10_000 }, 100_000);
    assert.ok(slow !== undefined && slow >= 450 && slow < 2_000, String(slow));
    assert.ok(fast !== undefined && fast >= 45_000 && fast < 100_000, String(fast));
    const plan = [...planTraffic({ ...base, scenario: 'range_scan', count: slow + 1 })];
    assert.equal(
      plan.findIndex((m) => m.attack !== undefined),
      slow,
    );
    assert.equal(plan[slow]!.attack, 'range_scan');
    assert.equal(firstAttackIndex({ ...base, scenario: 'range_scan' }, slow), undefined, 'not found when it lies beyond the search');
    assert.equal(firstAttackIndex({ ...base, scenario: 'normal' }, 5_000), undefined);
  });
});
