/**
 * A consumer kafkajs gives up on is restarted by the loop when the cause is a broker away. kafkajs treats
 * KafkaJSGroupCoordinatorNotFound ("Failed to find group coordinator": the coordinator still loading after a broker
 * restart, or not answering) as non-retriable: it disconnects the consumer, reports the crash with `restart: false` and
 * does nothing more. The loop then failed for good and `cdr start` exited 1 (CI, 2026-12-05, the broker-restart case of
 * tests/integrity/faults.test.ts on a loaded machine). The moment cannot be provoked on demand, so this test does
 * exactly what kafkajs does at that moment (consumer.disconnect(), then the crash event with `restart: false`) on a
 * real broker and engine, and checks that the loop comes back by itself and consumes what is sent afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pino from 'pino';
import kafkajs, { type Consumer } from 'kafkajs';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { produceTraffic } from '../../../services/generator/producer.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';

const { KafkaJSGroupCoordinatorNotFound } = kafkajs as unknown as { KafkaJSGroupCoordinatorNotFound: new (message: string) => Error };
const plan = { seed: 5, scenario: 'normal' as const, duplicates: 0, malformed: 0, late: 0, startTime: Date.now() - 3_600_000, eventsPerSecond: 20 };

describe('a consumer kafkajs gave up on after a broker error is restarted by the loop', () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let stateAfterCrash = '';
  let reasonsAfterCrash: readonly string[] = [];

  before(async () => {
    setup = testSetup();
    rt = await openRuntime(setup.config, { log: createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor(
      'ingest in its group',
      () => ingest.health().status === 'ok',
      60_000,
      100,
      () => ingest.health(),
    );
    // What kafkajs's consumer does on such a crash (consumer/index.js, onCrash): disconnect, then tell its listeners.
    const loop = ingest.loop as unknown as { consumer: Consumer; onCrash(error: Error, restart: boolean): void };
    await loop.consumer.disconnect();
    loop.onCrash(new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator'), false);
    stateAfterCrash = ingest.status().state;
    reasonsAfterCrash = ingest.health().reasons ?? [];
    await produceTraffic(requireKafka(rt), { ...plan, count: 300, topic: setup.config.kafka.topics.raw, rate: 0 });
    await waitFor(
      'ingest to store what was sent after the crash',
      () => ingest.stats.stored >= 300,
      90_000,
      200,
      () => ({ stats: ingest.stats, health: ingest.health() }),
    );
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('does not fail: degraded, saying the consumer restarts', () => {
    assert.equal(stateAfterCrash, 'running');
    assert.ok(
      reasonsAfterCrash.some((r) => /^broker_unavailable: consumer restarting after: Kafka: Failed to find group coordinator/.test(r)),
      JSON.stringify(reasonsAfterCrash),
    );
  });

  it('comes back by itself: what is sent afterwards is stored, and health is ok again', async () => {
    assert.equal(ingest.stats.stored, 300);
    await waitFor(
      'health ok',
      () => ingest.health().status === 'ok',
      30_000,
      100,
      () => ingest.health(),
    );
  });
});
