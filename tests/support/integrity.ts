/**
 * Shared assertions of the integrity suite: after crashes, rebalances and broker loss, every record is stored
 * exactly once — no gap (every expected id is there), no repeat (no id twice, no extra id).
 */
import assert from 'node:assert/strict';
import type { CdrEvent } from '../../services/core/index.ts';
import type { Storage } from '../../services/platform/clickhouse/storage.ts';
import type { PartitionedSender } from '../../services/platform/kafka/index.ts';
import { encodeCdrEvent } from '../../services/platform/schemas/index.ts';

/**
 * `ids` (the distinct records that must be stored) against `column` of `table` (active rows, no FINAL: a repeat
 * that a merge would hide later still counts as a repeat now).
 */
export async function assertNoGapNoRepeat(storage: Storage, table: string, column: string, ids: Iterable<string>, what = table): Promise<void> {
  const expected = new Set(ids);
  const rows = await storage.query<{ id: string; n: string }>(`SELECT ${column} AS id, count() AS n FROM ${storage.table(table)} GROUP BY id`);
  const repeated = rows.filter((r) => Number(r.n) > 1).map((r) => `${r.id} ×${r.n}`);
  const stored = new Set(rows.map((r) => r.id));
  const missing = [...expected].filter((id) => !stored.has(id));
  const extra = [...stored].filter((id) => !expected.has(id));
  assert.deepEqual(
    { missing: missing.length, repeated: repeated.length, extra: extra.length },
    { missing: 0, repeated: 0, extra: 0 },
    `${what}: gaps ${missing.slice(0, 5).join(', ')}; repeats ${repeated.slice(0, 5).join(', ')}; unexpected ${extra.slice(0, 5).join(', ')}`,
  );
}

/** The subscriber index holds each in-window record exactly twice (sender, recipient). */
export async function assertIndexExactlyTwice(storage: Storage, records: number): Promise<void> {
  const [ix] = await storage.query<{ n: string; u: string }>(`SELECT count() n, uniqExact(cdr_id, role) u FROM ${storage.table('subscriber_index')}`);
  assert.equal(Number(ix!.n), 2 * records, 'index rows = 2 × records');
  assert.equal(Number(ix!.u), Number(ix!.n), 'no index row twice');
}

/**
 * Sends CDRs to a cluster whose leaders may be moving (a broker killed): one send per partition (ADR 0030), and a send
 * that fails outright is sent again after half a second, up to `attempts` times — a copy in Kafka is a duplicate that
 * ingest drops, so the test's ids stay exactly what it sent.
 */
export async function sendThroughLeaderChanges(sender: PartitionedSender, topic: string, events: readonly CdrEvent[], attempts: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await sender.send(
        topic,
        events.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })),
        { acks: -1 },
      );
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
