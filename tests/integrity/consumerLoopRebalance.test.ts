/**
 * Rebalances mid-stream: while records keep arriving, consumer-loop members of one group join and leave (a second
 * joins, the first leaves, a third joins, the first comes back), each with its own ClickHouse session on the same
 * data, so partitions move between members with batches in flight. At the end every record is stored exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners, type Kafka } from 'kafkajs';
import { openStorage, type Storage } from '../../services/platform/clickhouse/index.ts';
import { ConsumerLoop, createKafka } from '../../services/platform/kafka/index.ts';
import { createLogger } from '../../services/platform/observability/index.ts';
import { requireStorage, type PipelineRuntime } from '../../services/platform/runtime/index.ts';
import { caughtUp } from '../support/children.ts';
import { assertNoGapNoRepeat } from '../support/integrity.ts';
import { readTopic, waitFor } from '../support/pipelineProbe.ts';
import { PROBE_TABLE, ProbeHandler, openProbeEnvironment, probeValue } from '../support/probeHandler.ts';
import { testSetup } from '../support/testEnv.ts';

const COUNT = 24_000;

describe('consumer loop under rebalances', () => {
  const setup = testSetup({
    CDR_TOPIC_PARTITIONS: '6',
    CDR_INGEST_MAX_BATCH: '200',
    CDR_INGEST_MAX_BYTES_PER_PARTITION: '32768',
    CDR_INGEST_SESSION_TIMEOUT_MS: '10000',
  });
  let output: string;
  const log = createLogger('warn');
  let rt: PipelineRuntime;
  let kafka: Kafka;
  const sessions: Storage[] = [];
  const members = new Map<string, { loop: ConsumerLoop<{ opened: number }>; handler: ProbeHandler }>();
  let joins = 0;

  async function member(name: string): Promise<void> {
    const storage = await openStorage(setup.config.clickhouse, setup.config.dataDir);
    sessions.push(storage);
    const handler = new ProbeHandler(output);
    const loop = new ConsumerLoop({
      kafka: createKafka(setup.config.kafka.brokers!, `member-${name}`, log),
      brokers: setup.config.kafka.brokers!,
      clientId: `member-${name}`,
      storage,
      log,
      handler,
      settings: {
        groupId: setup.config.ingest.groupId,
        topic: setup.config.kafka.topics.raw,
        maxBatchRecords: setup.config.ingest.maxBatchRecords,
        maxBytesPerPartition: setup.config.ingest.maxBytesPerPartition,
        sessionTimeoutMs: setup.config.ingest.sessionTimeoutMs,
        partitionsConcurrently: 3,
        dlqTopic: setup.config.kafka.topics.dlq,
        connector: `probe-${name}`,
      },
      onFatal: (err) => assert.fail(`member ${name} stopped: ${err.message}`),
    });
    members.set(name, { loop, handler });
    await loop.start();
    joins++;
  }

  async function leave(name: string): Promise<void> {
    await members.get(name)!.loop.stop();
    members.delete(name);
  }

  const progress = (): number => [...members.values()].reduce((s, m) => s + m.handler.counts.stored, 0);

  before(async () => {
    ({ rt, kafka, output } = await openProbeEnvironment(setup, 'rebalance-test', log));

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    // Records keep arriving throughout: 24 bursts of 1,000, one every 250 ms.
    const producing = (async () => {
      for (let b = 0; b < COUNT / 1000; b++) {
        const batch = Array.from({ length: 1000 }, (_, i) => ({ id: `r-${b * 1000 + i}` }));
        await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: batch.map((m) => ({ key: m.id, value: probeValue(m) })) });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    await member('a');
    await waitFor('member a under way', () => progress() > 1500, 60_000, 20);
    await member('b');
    await waitFor('more progress with a and b', () => progress() > 5000, 60_000, 20);
    await leave('a');
    await member('c');
    await waitFor('more progress with b and c', () => progress() > 9000, 60_000, 20);
    await member('a');
    await producing;
    await producer.disconnect();
    await waitFor('the group to catch up', () => caughtUp(kafka, setup.config.ingest.groupId, setup.config.kafka.topics.raw), 180_000, 300);
  });

  after(async () => {
    for (const m of members.values()) await m.loop.stop();
    for (const s of sessions) await s.close();
    await rt?.close();
  });

  it('had members join and leave mid-stream', () => {
    assert.equal(joins, 4);
    assert.ok([...members.values()].every((m) => m.loop.status().state === 'running'));
  });

  it('stores every record of the topic exactly once: no gap, no repeat (by partition and offset)', async () => {
    const inTopic = await readTopic(kafka, setup.config.kafka.topics.raw);
    assert.equal(new Set(inTopic.map((m) => m.value!.toString())).size, COUNT, 'every produced id is in the topic');
    const positions = inTopic.map((m) => `${(JSON.parse(m.value!.toString()) as { id: string }).id}@${m.offset}`);
    await assertNoGapNoRepeat(requireStorage(rt).storage, PROBE_TABLE, "concat(id, '@', toString(offset))", positions, 'probe table');
  });
});
