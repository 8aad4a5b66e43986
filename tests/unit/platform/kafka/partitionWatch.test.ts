import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionWatch, type PartitionOffsets } from '../../../../services/platform/kafka/partitionWatch.ts';

const STALL = { stallMs: 60_000, openTransactionMs: 60_000 };
const at = (s: number): number => Date.UTC(2026, 11, 7) + s * 1000;
const p = (partition: number, committed: number, stable: number, high = stable, low = 0): PartitionOffsets => ({ partition, committed, low, stable, high });

describe('PartitionWatch', () => {
  it('counts lag to the last stable offset and the records past it apart, from the log start when nothing is committed', () => {
    const w = new PartitionWatch();
    assert.deepEqual(w.observe([p(0, 10, 15, 40), p(1, -1, 30, 30, 5), p(2, 50, 50, 50)], at(0)), [
      { partition: 0, lag: 5, unstable: 25 },
      { partition: 1, lag: 25, unstable: 0 },
      { partition: 2, lag: 0, unstable: 0 },
    ]);
    // The two ends come from two requests: an end read before records were appended can lie below the LSO.
    assert.deepEqual(w.observe([p(0, 10, 45, 40)], at(5)), [{ partition: 0, lag: 35, unstable: 0 }]);
  });

  it('raises open_transaction once the LSO has held still with records past it beyond the stall threshold, on any partition', () => {
    const w = new PartitionWatch();
    w.observe([p(0, 100, 100, 100)], at(0));
    // A transaction opens: its records stand past the LSO from the read after the one that did not see them.
    for (let s = 5; s <= 60; s += 5) w.observe([p(0, 100, 100, 100 + s)], at(s));
    assert.deepEqual(w.alarms(at(60), STALL, new Set()), []);
    w.observe([p(0, 100, 100, 170)], at(65));
    assert.deepEqual(w.alarms(at(65), STALL, new Set()), [{ kind: 'open_transaction', partition: 0, records: 70, since: at(0), forMs: 65_000 }]);
    // Not held here: still named (a producer's transaction holds the topic, whoever reads it). No no_commit: lag is 0.
    // It commits: the LSO moves to the end, the alarm ends.
    w.observe([p(0, 100, 171, 171)], at(70));
    assert.deepEqual(w.alarms(at(70), STALL, new Set([0])), []);
  });

  it("gives a writer's transactions their own threshold, apart from the stall threshold (exactly-once writers commit minutes apart)", () => {
    const w = new PartitionWatch();
    w.observe([p(0, 100, 100, 100)], at(0));
    for (let s = 5; s <= 240; s += 5) w.observe([p(0, 100, 100, 100 + s)], at(s));
    const limits = { stallMs: 60_000, openTransactionMs: 300_000 };
    assert.deepEqual(w.alarms(at(240), limits, new Set([0])), []);
    w.observe([p(0, 100, 100, 400)], at(305));
    assert.deepEqual(
      w.alarms(at(305), limits, new Set([0])).map((a) => [a.kind, a.records]),
      [['open_transaction', 300]],
    );
  });

  it('does not alarm while transactions come and go, the LSO moving each time', () => {
    const w = new PartitionWatch();
    for (let s = 0; s <= 300; s += 5) w.observe([p(0, s * 10, s * 10, s * 10 + 7)], at(s));
    assert.deepEqual(w.alarms(at(300), STALL, new Set([0])), []);
  });

  it('raises no_commit for a held partition that waits without a commit while the others move, and not for others held elsewhere', () => {
    const w = new PartitionWatch();
    for (let s = 0; s <= 70; s += 5) w.observe([p(0, s * 10, s * 10 + 5), p(1, 0, 50), p(2, 0, 80)], at(s));
    assert.deepEqual(w.alarms(at(70), STALL, new Set([0, 1])), [{ kind: 'no_commit', partition: 1, records: 50, since: at(0), forMs: 70_000 }]);
    // Records that began to wait after an idle spell wait since the read before, not since the last commit.
    const idle = new PartitionWatch();
    idle.observe([p(0, 10, 10)], at(0));
    idle.observe([p(0, 10, 10)], at(100));
    idle.observe([p(0, 10, 30)], at(105));
    assert.deepEqual(idle.alarms(at(150), STALL, new Set([0])), []);
    idle.observe([p(0, 10, 30)], at(165));
    assert.deepEqual(idle.alarms(at(165), STALL, new Set([0])), [{ kind: 'no_commit', partition: 0, records: 20, since: at(100), forMs: 65_000 }]);
  });

  it('measures a partition newly given to this member from the assignment, and forgets partitions no longer read', () => {
    const w = new PartitionWatch();
    w.observe([p(0, 0, 50), p(1, 0, 50)], at(0));
    w.observe([p(0, 0, 50), p(1, 0, 50)], at(90));
    w.heldFrom([1], at(80));
    assert.deepEqual(
      w.alarms(at(90), STALL, new Set([0, 1])).map((a) => [a.partition, a.forMs]),
      [[0, 90_000]],
    );
    w.observe([p(1, 0, 50)], at(95));
    assert.deepEqual(
      w.alarms(at(200), STALL, new Set([0, 1])).map((a) => a.partition),
      [1],
    );
  });
});
