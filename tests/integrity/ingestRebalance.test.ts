/**
 * Ingest members of one group under rebalances: while planned traffic (with duplicates and malformed records) keeps
 * arriving, a second member joins, the first leaves, a third joins and the first comes back — each member with its
 * own ClickHouse session on the same data, as separate processes would have. Partitions move with batches in flight.
 * Every CDR is stored exactly once, indexed twice, and nothing is rebuilt by scanning the 10-year table.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Kafka } from 'kafkajs';
import { planTraffic, type PlannedMessage } from '../../services/generator/trafficPlan.ts';
import { createIngest } from '../../services/ingest/createIngest.ts';
import type { IngestService } from '../../services/ingest/ingestService.ts';
import { openStorage, type Storage } from '../../services/platform/clickhouse/index.ts';
import { createLogger } from '../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../services/platform/runtime/index.ts';
import { caughtUp } from '../support/children.ts';
import { assertIndexExactlyTwice, assertNoGapNoRepeat } from '../support/integrity.ts';
import { waitFor } from '../support/pipelineProbe.ts';
import { testSetup } from '../support/testEnv.ts';

const { Partitioners } = kafkajs;
const COUNT = 20_000;

describe('ingest members join and leave mid-stream', () => {
  const setup = testSetup({
    CDR_TOPIC_PARTITIONS: '6',
    CDR_INGEST_MAX_BATCH: '300',
    CDR_INGEST_MAX_BYTES_PER_PARTITION: '65536',
    CDR_INGEST_SESSION_TIMEOUT_MS: '10000',
  });
  const plan: PlannedMessage[] = [
    ...planTraffic({
      count: COUNT,
      seed: 2024,
      scenario: 'mixed',
      duplicates: 0.03,
      malformed: 0.01,
      late: 0.01,
      startTime: Date.now() - 3_600_000,
      eventsPerSecond: 50,
    }),
  ];
  let rt: PipelineRuntime;
  let kafka: Kafka;
  const sessions: Storage[] = [];
  const members = new Map<string, IngestService>();
  const handled = { stored: 0, late: 0 };
  let joins = 0;

  async function join(name: string): Promise<void> {
    const storage = await openStorage(setup.config.clickhouse, setup.config.dataDir);
    sessions.push(storage);
    const member = createIngest(rt, { storage, onFatal: (err) => assert.fail(`member ${name} stopped: ${err.message}`) });
    members.set(name, member);
    await member.start();
    joins++;
  }
  async function leave(name: string): Promise<void> {
    const m = members.get(name)!;
    await m.stop();
    handled.stored += m.stats.stored;
    handled.late += m.stats.late;
    members.delete(name);
  }
  const stored = (): number => handled.stored + [...members.values()].reduce((s, m) => s + m.stats.stored, 0);

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    kafka = requireKafka(rt);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const producing = (async () => {
      for (let i = 0; i < plan.length; i += 500) {
        await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: plan.slice(i, i + 500).map((m) => ({ key: m.key, value: m.value })) });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    await join('a');
    await waitFor('a under way', () => stored() > 2000, 60_000, 20);
    await join('b');
    await waitFor('a and b under way', () => stored() > 6000, 60_000, 20);
    await leave('a');
    await join('c');
    await waitFor('b and c under way', () => stored() > 10_000, 60_000, 20);
    await join('a');
    await producing;
    await producer.disconnect();
    await waitFor('the group to catch up', () => caughtUp(kafka, setup.config.ingest.groupId, setup.config.kafka.topics.raw), 180_000, 300);
  });

  after(async () => {
    for (const m of members.values()) await m.stop();
    for (const s of sessions) await s.close();
    await rt?.close();
  });

  it('had members join and leave while records arrived', () => {
    assert.equal(joins, 4);
    assert.ok([...members.values()].every((m) => m.status().state === 'running'));
  });

  it('stores every CDR exactly once and indexes it twice', async () => {
    const { storage } = requireStorage(rt);
    const expected = plan.filter((m) => m.kind === 'unique' || m.kind === 'late').map((m) => m.cdrId!);
    await assertNoGapNoRepeat(storage, 'cdr', 'cdr_id', expected);
    await assertIndexExactlyTwice(storage, plan.filter((m) => m.kind === 'unique').length);
  });
});
