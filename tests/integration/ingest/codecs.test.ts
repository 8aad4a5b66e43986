/**
 * Every Kafka compression codec, from a producer the project did not write: the Java client (from the broker
 * jars) produces planned traffic — with duplicates, malformed and late records — once with each of none, gzip,
 * snappy, lz4 and zstd. Ingest counts every outcome exactly, and what it publishes (zstd here) reads back with the
 * Java consumer record for record.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Kafka } from 'kafkajs';
import { planTraffic, type PlannedMessage } from '../../../services/generator/trafficPlan.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStorage, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { javaConsume, javaProduce, valuesDigest } from '../../support/javaKafka.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
const PER_CODEC = 1200;

describe('every compression codec, produced by the Java client', () => {
  const setup = testSetup({ CDR_KAFKA_COMPRESSION: 'zstd', CDR_INGEST_MAX_BATCH: '1000' });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  const plans = new Map<string, PlannedMessage[]>();
  const expected = { unique: 0, duplicate: 0, malformed: 0, late: 0 };

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('warn') });
    kafka = requireKafka(rt);
    const bootstrap = setup.config.kafka.brokers!.join(',');
    for (const [i, codec] of CODECS.entries()) {
      const plan = [
        ...planTraffic({
          count: PER_CODEC,
          seed: 9000 + i,
          scenario: 'mixed',
          duplicates: 0.05,
          malformed: 0.03,
          late: 0.02,
          startTime: Date.now() - 3_600_000,
          eventsPerSecond: 20,
        }),
      ];
      plans.set(codec, plan);
      for (const m of plan) expected[m.kind]++;
      const sent = await javaProduce(
        bootstrap,
        setup.config.kafka.topics.raw,
        codec,
        plan.map((m) => ({ key: Buffer.from(m.key), value: m.value })),
      );
      assert.equal(sent, PER_CODEC);
    }
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('every record handled', () => {
      const s = ingest.stats;
      return s.stored + s.late + s.duplicate + s.dlq >= CODECS.length * PER_CODEC;
    });
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('consumes all five codecs and counts every outcome exactly', () => {
    const s = ingest.stats;
    assert.deepEqual(
      { stored: s.stored, late: s.late, duplicate: s.duplicate, dlq: s.dlq },
      { stored: expected.unique, late: expected.late, duplicate: expected.duplicate, dlq: expected.malformed },
    );
    assert.equal(ingest.status().state, 'running');
  });

  it('stores each record of each codec once', async () => {
    const { storage } = requireStorage(rt);
    const [row] = await storage.query<{ n: string; u: string }>(`SELECT count() n, uniqExact(cdr_id) u FROM ${storage.table('cdr')}`);
    assert.equal(Number(row!.n), expected.unique + expected.late);
    assert.equal(Number(row!.u), Number(row!.n));
    const ids = new Set((await storage.query<{ cdr_id: string }>(`SELECT cdr_id FROM ${storage.table('cdr')}`)).map((r) => r.cdr_id));
    for (const [codec, plan] of plans) {
      const missing = plan.filter((m) => (m.kind === 'unique' || m.kind === 'late') && !ids.has(m.cdrId!));
      assert.equal(missing.length, 0, `${codec}: every record stored`);
    }
  });

  it('publishes zstd-compressed events the Java consumer reads, record for record', async () => {
    const ours = await readTopic(kafka, setup.config.kafka.topics.pseudonymised);
    assert.equal(ours.length, expected.unique + expected.late);
    const java = await javaConsume(setup.config.kafka.brokers!.join(','), setup.config.kafka.topics.pseudonymised, ours.length);
    assert.equal(java.count, ours.length);
    assert.equal(java.digest, valuesDigest(ours.map((m) => m.value)));
  });
});
