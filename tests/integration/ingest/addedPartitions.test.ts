/**
 * Partitions added to cdr.raw while ingest runs are read within a minute (found from outside, 2026-12-06: kafkajs's
 * five-minute metadata age left them unconsumed for ~4 minutes while /healthz went back to ok).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Kafka } from 'kafkajs';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { CONSUMER_METADATA_MAX_AGE_MS } from '../../../services/platform/kafka/consumerLoop.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

describe('partitions added to the raw topic while ingest runs', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: '2' });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  const gen = new TrafficGenerator({ seed: 31, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 20 });

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('warn') });
    kafka = requireKafka(rt);
    ingest = createIngest(rt);
    await ingest.start();
  });
  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('are read within the metadata age and a rejoin', async () => {
    assert.ok(CONSUMER_METADATA_MAX_AGE_MS <= 30_000);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      // The group has joined and read the topic as it was.
      await producer.send({ topic: setup.config.kafka.topics.raw, messages: gen.take(20).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
      await waitFor('the first records', () => ingest.stats.stored + ingest.stats.late >= 20, 60_000);
      const admin = kafka.admin();
      await admin.connect();
      await admin.createPartitions({ topicPartitions: [{ topic: setup.config.kafka.topics.raw, count: 4 }] });
      await admin.disconnect();
      const began = Date.now();
      // A producer that knows the new partitions (one connected before would not send to them).
      const fresh = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await fresh.connect();
      await fresh.send({
        topic: setup.config.kafka.topics.raw,
        messages: gen.take(40).map((e, i) => ({ key: e.cdr_id, value: encodeCdrEvent(e), partition: 2 + (i % 2) })),
      });
      await fresh.disconnect();
      await waitFor('the records of the new partitions', () => ingest.stats.stored + ingest.stats.late >= 60, 90_000);
      // kafkajs's default (5 min) failed this; the metadata age and a rejoin are well under it.
      assert.ok(Date.now() - began < 90_000);
    } finally {
      await producer.disconnect();
    }
  });
});
