import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HealthRegistry } from '../../../../services/platform/http/index.ts';
import { loopHealth, type LoopStatus } from '../../../../services/platform/kafka/index.ts';

const status = (over: Partial<LoopStatus>): LoopStatus => ({
  state: 'running',
  batches: 3,
  lag: 0,
  unstable: 0,
  partitionAlarms: [],
  lagAt: Date.UTC(2026, 0, 1),
  lagAgeMs: 0,
  partitions: 2,
  joined: true,
  startedAt: Date.UTC(2026, 0, 1),
  lastProgressAt: Date.UTC(2026, 0, 1),
  problem: undefined,
  stalledMs: 0,
  lagUnreadMs: 0,
  inFlight: [],
  ...over,
});

describe('health', () => {
  it('is ok only while every component is ok, and names each reason', () => {
    const h = new HealthRegistry();
    h.register('ingest', () => ({ status: 'ok' }));
    assert.equal(h.report().status, 'ok');
    h.register('billing', () => ({ status: 'degraded', reasons: ['storage_unavailable: ClickHouse insert failed'] }));
    assert.deepEqual(h.report().reasons, ['billing: storage_unavailable: ClickHouse insert failed']);
    assert.equal(h.report().status, 'degraded');
    h.register('fraud', () => ({ status: 'down', reasons: ['stopped'] }));
    assert.equal(h.report().status, 'down');
  });

  it('a check that throws is down, not a crash of /healthz', () => {
    const h = new HealthRegistry();
    h.register('broken', () => {
      throw new Error('boom');
    });
    const r = h.report();
    assert.equal(r.status, 'down');
    assert.match(r.reasons[0]!, /broken: health check failed: boom/);
  });

  it('maps a consumer loop: running ok, retrying degraded, failed or stopped down', () => {
    assert.equal(loopHealth(status({})).status, 'ok');
    assert.equal(loopHealth(status({ problem: 'storage_unavailable: down' })).status, 'degraded');
    assert.equal(loopHealth(status({ state: 'starting' })).status, 'degraded');
    assert.equal(loopHealth(status({ state: 'stopped' })).status, 'down');
    const failed = loopHealth(status({ state: 'failed', problem: 'unsupported: Snappy compression not implemented' }));
    assert.equal(failed.status, 'down');
    assert.match(failed.reasons![0]!, /failed: unsupported: Snappy/);
    assert.equal(failed.detail!['last_progress_at'], '2026-01-01T00:00:00.000Z');
  });

  it('a running consumer not yet in its group is degraded, not ok with no partitions', () => {
    // Found from outside: after an unclean stop, ok with 0 partitions for ~40 s while the join waited.
    const joining = loopHealth(status({ joined: false, partitions: 0 }));
    assert.equal(joining.status, 'degraded');
    assert.deepEqual(joining.reasons, ['joining its consumer group: no partitions yet']);
    // Joined with no partition of its own (more members than partitions): ok.
    assert.equal(loopHealth(status({ partitions: 0 })).status, 'ok');
  });

  it('a running consumer that commits nothing while records wait is degraded, and says how long and how many', () => {
    const stalled = loopHealth(status({ lag: 1234, stalledMs: 95_000 }));
    assert.equal(stalled.status, 'degraded');
    assert.deepEqual(stalled.reasons, ['no batch committed for 95 s while 1234 records wait']);
  });

  it('a running consumer whose lag the broker has not answered for the stall threshold is degraded, not ok', () => {
    const unread = loopHealth(status({ lag: 0, lagUnreadMs: 75_000 }));
    assert.equal(unread.status, 'degraded');
    assert.deepEqual(unread.reasons, ['consumer lag not read from the broker for 75 s: what waits is unknown (is the broker answering?)']);
  });

  it('a stalled consumer names where its oldest batch in progress waits, and health lists every one', () => {
    const inFlight = [
      { partition: 4, stage: 'writing cdr', since: Date.UTC(2026, 0, 1, 0, 1) },
      { partition: 1, stage: 'publishing', since: Date.UTC(2026, 0, 1, 0, 0, 30) },
    ];
    const stalled = loopHealth(status({ lag: 10, stalledMs: 120_000, inFlight }));
    assert.deepEqual(stalled.reasons, [
      "no batch committed for 120 s while 10 records wait (partition 1's batch at 'publishing' since 2026-01-01T00:00:30.000Z)",
    ]);
    assert.deepEqual(stalled.detail!['in_flight'], [
      { partition: 4, stage: 'writing cdr', since: '2026-01-01T00:01:00.000Z' },
      { partition: 1, stage: 'publishing', since: '2026-01-01T00:00:30.000Z' },
    ]);
    // Running and not stalled: the batches in progress are detail, not a reason.
    assert.equal(loopHealth(status({ inFlight })).status, 'ok');
  });

  it('names records behind an open transaction and a partition of its own that does not move, each once', () => {
    const since = Date.UTC(2026, 0, 1);
    const partitionAlarms = [
      { kind: 'open_transaction', partition: 2, records: 300, since, forMs: 75_000 },
      { kind: 'open_transaction', partition: 5, records: 12, since, forMs: 62_000 },
      { kind: 'no_commit', partition: 6, records: 40, since, forMs: 90_000 },
    ] as const;
    const h = loopHealth(status({ lag: 40, unstable: 312, partitionAlarms }));
    assert.equal(h.status, 'degraded');
    assert.deepEqual(h.reasons, [
      "312 records wait behind a producer's transaction open for at least 75 s on partitions 2, 5 (the last stable offset has not moved); " +
        "they are read when the producer commits or aborts it, at the latest when the broker's transaction timeout ends it",
      'no commit for up to 90 s on partition 6 while 40 records wait there',
    ]);
    assert.equal(h.detail!['past_last_stable_offset'], 312);
    // The member as a whole stalled: said once, by the group-wide reason; the open transaction is still named.
    const all = loopHealth(status({ lag: 40, stalledMs: 90_000, partitionAlarms }));
    assert.equal(all.reasons!.length, 2);
    assert.match(all.reasons![0]!, /^no batch committed for 90 s while 40 records wait$/);
    assert.match(all.reasons![1]!, /behind a producer's transaction/);
    // Records past the LSO with no alarm (a transaction open for a moment) are detail, not a reason.
    assert.equal(loopHealth(status({ unstable: 50 })).status, 'ok');
  });
});
