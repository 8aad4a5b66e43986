/**
 * A batch that never finishes: health says where it waits, `stop` still returns, and past the stage deadline the
 * loop fails so the service is restarted (seen in the integrity suite: a member's kafkajs disconnect waited for its
 * batch in progress forever, and the test file hung until its timeout). Real broker, real engine; the handler's
 * prepare is what hangs here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { PipelineError } from '../../../services/core/index.ts';
import {
  ConsumerLoop,
  createKafka,
  loopHealth,
  type BatchContext,
  type BatchResult,
  type ConsumerLoopSettings,
} from '../../../services/platform/kafka/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { ProbeHandler, openProbeEnvironment, probeValue } from '../../support/probeHandler.ts';
import { testSetup } from '../../support/testEnv.ts';

/**
 * Prepares like the probe handler, except that a record whose id starts with `hang` is not done preparing until the
 * test releases it, at its very end: a kafkajs consumer whose batch never returns keeps its connections open, and the
 * test process would never exit.
 */
class HangingHandler extends ProbeHandler {
  private static readonly hanging: ((err: Error) => void)[] = [];

  /** By default a transient error: the loop, already stopped, abandons the batch and kafkajs's pending disconnect completes. */
  static release(err: Error = new PipelineError('unavailable', 'released at the end of the test')): void {
    for (const reject of HangingHandler.hanging.splice(0)) reject(err);
  }

  override prepare(messages: readonly KafkaMessage[], ctx: BatchContext<{ opened: number }>): Promise<BatchResult> {
    if (messages.some((m) => m.value?.toString().includes('"hang'))) return new Promise<BatchResult>((_, reject) => HangingHandler.hanging.push(reject));
    return super.prepare(messages, ctx);
  }
}

describe('consumer loop: a batch that never finishes', () => {
  const setup = testSetup({ CDR_TOPIC_PARTITIONS: '2' });
  const log = createLogger('silent');
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let output: string;
  const loops: ConsumerLoop<{ opened: number }>[] = [];

  /** A member of its own group, reading the topic (and its one hanging record) from the beginning. */
  function member(
    group: string,
    extra: Partial<ConsumerLoopSettings>,
    onFatal?: (err: PipelineError) => void,
    clock?: () => number,
  ): ConsumerLoop<{ opened: number }> {
    const loop = new ConsumerLoop({
      ...(clock ? { clock } : {}),
      kafka: createKafka(setup.config.kafka.brokers!, `stop-test-${group}`, log),
      brokers: setup.config.kafka.brokers!,
      clientId: `stop-test-${group}`,
      storage: requireStorage(rt).storage,
      log,
      handler: new HangingHandler(output),
      ...(onFatal ? { onFatal } : {}),
      settings: {
        groupId: `${setup.config.ingest.groupId}-${group}`,
        topic: setup.config.kafka.topics.raw,
        maxBatchRecords: 100,
        maxBytesPerPartition: 65_536,
        sessionTimeoutMs: 6_000,
        partitionsConcurrently: 2,
        dlqTopic: setup.config.kafka.topics.dlq,
        connector: `probe-${group}`,
        stallMs: 1_000,
        lagPollMs: 200,
        stopTimeoutMs: 3_000,
        ...extra,
      },
    });
    loops.push(loop);
    return loop;
  }

  before(async () => {
    ({ rt, kafka, output } = await openProbeEnvironment(setup, 'stop-test', log));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, messages: [{ key: 'k', value: probeValue({ id: 'hang-1' }) }] });
    await producer.disconnect();
  });

  after(async () => {
    for (const loop of loops) await loop.stop();
    HangingHandler.release();
    await rt?.close();
    setup.cleanup();
  });

  describe('before its stage deadline', () => {
    let loop: ConsumerLoop<{ opened: number }>;
    const fatal: PipelineError[] = [];
    before(async () => {
      loop = member('degraded', {}, (err) => fatal.push(err));
      await loop.start();
    });

    it('says which partition waits at which stage, in its status and as the reason health is degraded', async () => {
      // Its earlier stages (opening the partition, reading the last recorded batch) can take a while under load.
      await waitFor('the batch to be preparing', () => loop.status().inFlight[0]?.stage === 'preparing', 60_000, 50);
      const [b] = loop.status().inFlight;
      assert.equal(b!.stage, 'preparing');
      await waitFor('health to call it stalled', () => loopHealth(loop.status()).status === 'degraded', 30_000, 100);
      const h = loopHealth(loop.status());
      assert.match(h.reasons![0]!, new RegExp(`no batch committed for \\d+ s while 1 records wait \\(partition ${b!.partition}'s batch at 'preparing' since `));
      assert.deepEqual(
        (h.detail!['in_flight'] as { stage: string }[]).map((x) => x.stage),
        ['preparing'],
      );
      assert.equal(loop.status().state, 'running', 'within the deadline the loop keeps waiting');
    });

    it('stops anyway, within its stop timeout, and says it is stopped', async () => {
      const t0 = Date.now();
      await loop.stop();
      const took = Date.now() - t0;
      // 3 s for the consumer, plus the admin and publisher closing; without the bound this never returns.
      assert.ok(took < 20_000, `stop took ${took} ms`);
      assert.equal(loop.status().state, 'stopped');
    });

    it('stays stopped when the abandoned batch later ends in an error that would stop it', async () => {
      HangingHandler.release(new PipelineError('invariant_broken', 'the abandoned batch woke with a stop error'));
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(loop.status().state, 'stopped');
      assert.deepEqual(fatal, []);
    });
  });

  describe('on a clock of its own', () => {
    it('measures the stall on that clock, not on the host clock', async () => {
      // An hour ahead of the host: measured against Date.now(), the stall would be negative and never reported.
      const ahead = (): number => Date.now() + 3_600_000;
      const loop = member('clock', {}, undefined, ahead);
      await loop.start();
      await waitFor('the batch to be preparing', () => loop.status().inFlight[0]?.stage === 'preparing', 60_000, 50);
      await waitFor('health to call it stalled', () => loopHealth(loop.status()).status === 'degraded', 30_000, 100);
      const { stalledMs } = loop.status();
      assert.ok(stalledMs >= 1_000 && stalledMs < 600_000, `stalled ${stalledMs} ms`);
      await loop.stop();
    });
  });

  describe('past its stage deadline', () => {
    it('fails with code stuck, naming partition and stage, so the service stops and is restarted', async () => {
      const fatal: PipelineError[] = [];
      const loop = member('wedged', { stageDeadlineMs: 3_000 }, (err) => fatal.push(err));
      await loop.start();
      // Its earlier stages (opening the partition, reading the last recorded batch) can take a while under load.
      await waitFor('the batch to be preparing', () => loop.status().inFlight[0]?.stage === 'preparing', 60_000, 50);
      const since = loop.status().inFlight[0]!.since;
      await waitFor('the loop to give up on the batch', () => fatal.length > 0, 30_000, 100);
      assert.ok(Date.now() - since >= 3_000, 'not before the deadline');
      assert.equal(fatal.length, 1);
      assert.equal(fatal[0]!.code, 'stuck');
      assert.equal(fatal[0]!.disposition, 'stop');
      assert.match(fatal[0]!.message, /^partition \d's batch has been at 'preparing' for \d+ s \(limit 3 s\)/);
      const h = loopHealth(loop.status());
      assert.equal(h.status, 'down');
      assert.match(h.reasons![0]!, /^failed: stuck: partition \d's batch has been at 'preparing'/);
      // What the service's shutdown does next; the wedged batch must not hold it.
      const t0 = Date.now();
      await loop.stop();
      assert.ok(Date.now() - t0 < 20_000, `stop took ${Date.now() - t0} ms`);
      assert.equal(loop.status().state, 'failed');
    });
  });
});
