/**
 * A record ingest cannot store goes to the DLQ with its original bytes — unless its identifier window has already
 * closed (event_time ≥ 13 months back): then the DLQ gets a stub (no value, no key, the pointer, why), so the
 * identifiers are not copied anywhere past their retention. The same invalid record from this month keeps its bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Kafka, type KafkaMessage } from 'kafkajs';
import { addMonthsUtc, startOfMonthUtc, type CdrEvent } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { DLQ_ORIGINAL_BYTES_HEADER, DLQ_STUB_HEADER, DLQ_STUB_IDENTIFIERS_EXPIRED } from '../../../services/platform/kafka/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { readTopic, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;

describe('dead letters of records whose identifier window has closed', () => {
  const setup = testSetup();
  const gen = new TrafficGenerator({ seed: 77, scenario: 'normal', startTime: Date.now() - 600_000, ratePerSecond: 10 });
  let rt: PipelineRuntime;
  let kafka: Kafka;
  let ingest: IngestService;
  let old: CdrEvent;
  let recent: CdrEvent;
  let dlq: KafkaMessage[] = [];

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    kafka = requireKafka(rt);
    // 14 months back: the identifier window (startOfMonth + 13 months) has closed.
    const oldTime = addMonthsUtc(startOfMonthUtc(Date.now()), -14) + 3_600_000;
    const invalid = (patch: Partial<CdrEvent>): CdrEvent => ({ ...gen.next(), destination_country: 'xx', ...patch });
    old = invalid({ event_time: oldTime, submitted_at: oldTime, delivered_at: oldTime + 1000 });
    recent = invalid({});
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({
      topic: setup.config.kafka.topics.raw,
      acks: -1,
      messages: [old, recent].map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })),
    });
    await producer.disconnect();
    ingest = createIngest(rt);
    await ingest.start();
    await waitFor('both records dead-lettered', () => ingest.stats.dlq >= 2);
    await ingest.stop();
    dlq = await readTopic(kafka, setup.config.kafka.topics.dlq);
  });

  after(async () => {
    await ingest?.stop();
    await rt?.close();
  });

  it('the expired one is a stub: no value, no key, the pointer and why', () => {
    assert.equal(dlq.length, 2);
    const stubs = dlq.filter((m) => m.value === null);
    assert.equal(stubs.length, 1);
    const stub = stubs[0]!;
    assert.equal(stub.key, null);
    assert.equal(String(stub.headers![DLQ_STUB_HEADER]), DLQ_STUB_IDENTIFIERS_EXPIRED);
    assert.equal(String(stub.headers!['__connect.errors.exception.class.name']), 'PipelineError:validation_failed');
    assert.equal(String(stub.headers!['__connect.errors.topic']), setup.config.kafka.topics.raw);
    assert.ok(Number(String(stub.headers![DLQ_ORIGINAL_BYTES_HEADER])) > 0);
    const text = JSON.stringify(Object.fromEntries(Object.entries(stub.headers!).map(([k, v]) => [k, String(v)])));
    assert.ok(!text.includes(old.sender) && !text.includes(old.recipient), 'no identifier in the stub');
  });

  it('the recent one keeps its original bytes and key', () => {
    const full = dlq.find((m) => m.value !== null);
    assert.ok(full);
    assert.deepEqual(full.value, encodeCdrEvent(recent));
    assert.equal(full.key?.toString(), recent.cdr_id);
    assert.equal(full.headers![DLQ_STUB_HEADER], undefined);
  });
});
