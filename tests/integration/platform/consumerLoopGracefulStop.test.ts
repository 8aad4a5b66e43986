/**
 * A graceful stop commits the batch it lets finish. kafkajs's commitOffsets returns without committing once its
 * runner is stopping, so a loop that called kafkajs's disconnect first left that batch uncommitted: the next start
 * replayed it — stored once, but published and counted "stored" again (found from outside: Ctrl-C and restart of
 * `cdr start` re-published 1,200 records). Real broker, real engine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { ConsumerLoop, createKafka, type BatchContext, type BatchResult } from '../../../services/platform/kafka/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { PROBE_TABLE, ProbeHandler, openProbeEnvironment, probeValue } from '../../support/probeHandler.ts';
import { testSetup } from '../../support/testEnv.ts';

const RECORDS = 40;

/** Prepares like the probe handler, after a gate the test opens: the batch is in progress when stop() is called. */
class GatedHandler extends ProbeHandler {
  private gate: Promise<void>;
  open!: () => void;
  prepares = 0;
  constructor(output: string) {
    super(output);
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  override async prepare(messages: readonly KafkaMessage[], ctx: BatchContext<{ opened: number }>): Promise<BatchResult> {
    this.prepares++;
    await this.gate;
    return super.prepare(messages, ctx);
  }
}

describe('consumer loop: a graceful stop', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: '1' });
  const log = createLogger('silent');
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let admin: Admin;
  let output: string;
  const group = `${setup.config.ingest.groupId}-graceful`;

  function member(handler: ProbeHandler, name: string): ConsumerLoop<{ opened: number }> {
    return new ConsumerLoop({
      kafka: createKafka(setup.config.kafka.brokers!, `graceful-${name}`, log),
      brokers: setup.config.kafka.brokers!,
      clientId: `graceful-${name}`,
      storage: requireStorage(rt).storage,
      log,
      handler,
      settings: {
        groupId: group,
        topic: setup.config.kafka.topics.raw,
        maxBatchRecords: 1_000,
        maxBytesPerPartition: 1_048_576,
        sessionTimeoutMs: 6_000,
        partitionsConcurrently: 1,
        dlqTopic: setup.config.kafka.topics.dlq,
        connector: `graceful-${name}`,
        lagPollMs: 200,
        stopTimeoutMs: 20_000,
      },
    });
  }

  async function committed(): Promise<number> {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [setup.config.kafka.topics.raw] });
    return Number(t!.partitions[0]!.offset);
  }

  before(async () => {
    ({ rt, kafka, output } = await openProbeEnvironment(setup, 'graceful-test', log));
    admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      messages: Array.from({ length: RECORDS }, (_, i) => ({ key: `k${i}`, value: probeValue({ id: `g-${i}` }) })),
    });
    await producer.disconnect();
  });

  after(async () => {
    await admin?.disconnect();
    await rt?.close();
    setup.cleanup();
  });

  it('lets the batch in progress finish, commits it, and starts no other', async () => {
    const handler = new GatedHandler(output);
    const loop = member(handler, 'first');
    await loop.start();
    await waitFor('the batch to be preparing', () => loop.status().inFlight[0]?.stage === 'preparing', 60_000, 20);
    const stopping = loop.stop();
    // stop() is under way (kafkajs not yet told) when the batch can go on.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(loop.status().state, 'stopping');
    handler.open();
    await stopping;
    assert.equal(loop.status().state, 'stopped');
    assert.equal(handler.counts.stored, RECORDS, 'the batch in progress was written');
    assert.equal(await committed(), RECORDS, 'and committed before the consumer left the group');
    const rows = await requireStorage(rt).storage.query<{ n: string }>(`SELECT count() AS n FROM ${requireStorage(rt).storage.table(PROBE_TABLE)}`);
    assert.equal(Number(rows[0]!.n), RECORDS);
  });

  it('leaves nothing for the next start to replay', async () => {
    const handler = new ProbeHandler(output);
    const loop = member(handler, 'second');
    await loop.start();
    try {
      await waitFor('the lag to be read as 0', () => loop.status().lagAt !== undefined && loop.status().lag === 0, 60_000, 100);
      // A replay would show as a batch prepared again within a moment of joining.
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal(handler.counts.stored, 0, 'no record prepared, published or counted again');
      assert.equal(loop.status().batches, 0);
    } finally {
      await loop.stop();
    }
  });
});
