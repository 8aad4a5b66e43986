/**
 * A batch that never finishes: health says where it waits, and `stop` still returns (seen once in the integrity
 * suite: a member's kafkajs disconnect waited for its batch in progress forever, and the test file hung until its
 * timeout). Real broker, real engine; the handler's prepare is what hangs here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { ConsumerLoop, createKafka, loopHealth, type BatchContext, type BatchResult } from '../../../services/platform/kafka/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { ProbeHandler, openProbeEnvironment, probeValue } from '../../support/probeHandler.ts';
import { testSetup } from '../../support/testEnv.ts';

/** Prepares like the probe handler, except that a record whose id starts with `hang` is never done preparing. */
class HangingHandler extends ProbeHandler {
  override prepare(messages: readonly KafkaMessage[], ctx: BatchContext<{ opened: number }>): Promise<BatchResult> {
    if (messages.some((m) => m.value?.toString().includes('"hang'))) return new Promise<BatchResult>(() => undefined);
    return super.prepare(messages, ctx);
  }
}

describe('consumer loop: a batch that never finishes', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: '2' });
  const log = createLogger('silent');
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let loop: ConsumerLoop<{ opened: number }>;
  let output: string;

  before(async () => {
    ({ rt, kafka, output } = await openProbeEnvironment(setup, 'stop-test', log));
    loop = new ConsumerLoop({
      kafka: createKafka(setup.config.kafka.brokers!, 'stop-test-member', log),
      brokers: setup.config.kafka.brokers!,
      clientId: 'stop-test-member',
      storage: requireStorage(rt).storage,
      log,
      handler: new HangingHandler(output),
      settings: {
        groupId: setup.config.ingest.groupId,
        topic: setup.config.kafka.topics.raw,
        maxBatchRecords: 100,
        maxBytesPerPartition: 65_536,
        sessionTimeoutMs: 6_000,
        partitionsConcurrently: 2,
        dlqTopic: setup.config.kafka.topics.dlq,
        connector: 'probe-stop',
        stallMs: 1_000,
        lagPollMs: 200,
        stopTimeoutMs: 3_000,
      },
    });
    await loop.start();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, messages: [{ key: 'k', value: probeValue({ id: 'hang-1' }) }] });
    await producer.disconnect();
  });

  after(async () => {
    await loop?.stop();
    await rt?.close();
    setup.cleanup();
  });

  it('says which partition waits at which stage, in its status and as the reason health is degraded', async () => {
    await waitFor('the batch to be in progress', () => loop.status().inFlight.length === 1, 60_000, 50);
    const [b] = loop.status().inFlight;
    assert.equal(b!.stage, 'preparing');
    await waitFor('health to call it stalled', () => loopHealth(loop.status()).status === 'degraded', 30_000, 100);
    const h = loopHealth(loop.status());
    assert.match(h.reasons![0]!, new RegExp(`no batch committed for \\d+ s while 1 records wait \\(partition ${b!.partition}'s batch at 'preparing' since `));
    assert.deepEqual(
      (h.detail!['in_flight'] as { stage: string }[]).map((x) => x.stage),
      ['preparing'],
    );
  });

  it('stops anyway, within its stop timeout, and says it is stopped', async () => {
    const t0 = Date.now();
    await loop.stop();
    const took = Date.now() - t0;
    // 3 s for the consumer, plus the admin and publisher closing; without the bound this never returns.
    assert.ok(took < 20_000, `stop took ${took} ms`);
    assert.equal(loop.status().state, 'stopped');
  });
});
