/**
 * Records behind a transaction a producer leaves open. Found from outside (2026-12-06, a librdkafka transactional
 * producer killed mid-transaction): the lag was read at the last stable offset (LSO), so the records after the open
 * transaction — other producers' too — waited for up to the broker's transaction timeout while `cdr_ingest_lag_records`
 * said 0 and /healthz said ok. Now the high watermark is read too (kafkajs's admin at READ_UNCOMMITTED, the patch of
 * ADR 0036): the records past the LSO are a gauge of their own, and an LSO that holds still with records past it for
 * the stall threshold makes health degraded, naming the partition. Real broker, real engine, a kafkajs transactional
 * producer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pino from 'pino';
import type { Producer, Transaction } from 'kafkajs';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/runtime.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { waitFor } from '../../support/pipelineProbe.ts';
import { testSetup, type TestSetup } from '../../support/testEnv.ts';

const STALL_MS = 4_000;

describe('records behind a transaction a producer left open', () => {
  let setup: TestSetup;
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let transactional: Producer;
  let plain: Producer;
  let tx: Transaction;
  const gen = new TrafficGenerator({ seed: 31, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
  const messages = (n: number, partition: number): { key: string; value: Buffer; partition: number }[] =>
    gen.take(n).map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e), partition }));

  before(async () => {
    setup = testSetup({ CDR_CONSUMER_STALL_MS: String(STALL_MS), CDR_OPEN_TRANSACTION_ALARM_MS: String(STALL_MS) });
    rt = await openRuntime(setup.config, { log: createLogger('warn', pino.destination({ dest: join(setup.dataDir, 'test.log'), sync: true })) });
    ingest = createIngest(rt);
    await ingest.start();
    const kafka = requireKafka(rt);
    plain = kafka.producer();
    transactional = kafka.producer({ transactionalId: `open-tx-${process.pid}`, idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([plain.connect(), transactional.connect()]);
    const topic = setup.config.kafka.topics.raw;
    await plain.send({ topic, messages: messages(6, 0) });
    await waitFor(
      'the first records stored',
      () => ingest.stats.stored === 6,
      90_000,
      200,
      () => ingest.stats,
    );
    // The transaction opens on partition 1 and stays open; a plain producer's records land behind it.
    tx = await transactional.transaction();
    await tx.send({ topic, messages: messages(5, 1) });
    await plain.send({ topic, messages: messages(3, 1) });
    // Partition 0 goes on moving meanwhile.
    await plain.send({ topic, messages: messages(4, 0) });
  });

  after(async () => {
    await Promise.all([plain?.disconnect(), transactional?.disconnect()]);
    await ingest?.stop();
    await rt?.close();
    setup?.cleanup();
  });

  it('says so: a gauge of the records past the stable offset, and health degraded naming the partition; ok again once it commits', async () => {
    const gauge = async (): Promise<string> => (await rt.metrics.registry.getSingleMetricAsString('cdr_consumer_records_past_stable_offset')) ?? '';
    await waitFor(
      'health names the open transaction',
      () => ingest.health().status === 'degraded',
      60_000,
      200,
      () => ingest.health(),
    );
    const health = ingest.health();
    assert.deepEqual(health.reasons?.length, 1, JSON.stringify(health));
    assert.match(
      health.reasons[0]!,
      /^8 records wait behind a producer's transaction open for at least \d+ s on partition 1 \(the last stable offset has not moved\)/,
    );
    assert.equal(health.detail!['past_last_stable_offset'], 8);
    // The lag counts what can be read: nothing waits there (partition 0's records are stored).
    assert.equal(ingest.status().lag, 0);
    assert.equal(ingest.stats.stored, 10);
    assert.match(await gauge(), /cdr_consumer_records_past_stable_offset\{consumer="ingest",partition="1"\} 8(\n|$)/);
    assert.match(await gauge(), /cdr_consumer_records_past_stable_offset\{consumer="ingest",partition="0"\} 0(\n|$)/);

    await tx.commit();
    await waitFor(
      'the committed and the waiting records stored',
      () => ingest.stats.stored === 18,
      60_000,
      200,
      () => ingest.stats,
    );
    await waitFor(
      'health ok again',
      () => ingest.health().status === 'ok' && ingest.status().unstable === 0,
      30_000,
      200,
      () => ingest.health(),
    );
    assert.match(await gauge(), /cdr_consumer_records_past_stable_offset\{consumer="ingest",partition="1"\} 0(\n|$)/);
    assert.deepEqual([ingest.stats.duplicate, ingest.stats.dlq], [0, 0]);
  });
});
