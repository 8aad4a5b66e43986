/**
 * The project's librdkafka binding (native/producer.cc, ADR 0043) on its own, against the real broker: what the
 * publisher test (publisher.test.ts, which runs every publisher through the same assertions) cannot reach through
 * NativePublisher — a slice librdkafka refuses part-way, strings with a U+0000 handed over by length, and a process
 * that sends and ends without closing. Skipped only where the binding is not built; CI requires it
 * (CDR_TEST_NATIVE_KAFKA=required).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { batchKafka } from '../../../services/platform/kafka/batchProducer.ts';
import { NativePublisher, type RdError } from '../../../services/platform/kafka/nativePublisher.ts';
import { createKafka } from '../../../services/platform/kafka/kafkaClient.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import type { OutgoingMessage } from '../../../services/platform/kafka/publisher.ts';
import { testBrokers, uniqueName } from '../../support/testEnv.ts';
import { readTopic } from '../../support/pipelineProbe.ts';

const batch = batchKafka();
if (process.env['CDR_TEST_NATIVE_KAFKA'] === 'required' && !('module' in batch))
  throw new Error(`CDR_TEST_NATIVE_KAFKA=required, but the batch binding does not load: ${'error' in batch ? batch.error : ''}`);

describe('batch producer binding', { skip: 'module' in batch ? false : `not built here: ${'error' in batch ? batch.error : ''}` }, () => {
  const brokers = testBrokers();
  const log = createLogger('warn');
  let kafka: Kafka;
  const topic = uniqueName('batchbinding');

  before(async () => {
    kafka = createKafka(brokers.split(','), 'batch-binding-test', log);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
  });

  after(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('queues a slice until librdkafka refuses a message (queue full), answers once for what it queued, and only that arrives', async () => {
    if (!('module' in batch)) return;
    const producer = new batch.module.Producer({ 'bootstrap.servers': brokers, 'queue.buffering.max.messages': 10, 'linger.ms': 20, dr_cb: true });
    const reports: { err: RdError | null; opaque: unknown }[] = [];
    const reported = new Promise<void>((resolve) =>
      producer.on('delivery-report', (err, report) => {
        reports.push({ err, opaque: report.opaque });
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
    const messages: OutgoingMessage[] = Array.from({ length: 25 }, (_, i) => ({ key: 'k', value: Buffer.from(`m${i}`) }));
    const slice = producer.produceSlice!(topic, messages, 0, 25, 'slice-1');
    assert.equal(slice.queued, 10, 'the queue holds 10');
    assert.equal(slice.code, -184, `queue full, not ${slice.code} ${slice.message}`);
    assert.match(slice.message, /queue/i);
    await reported;
    await new Promise<void>((resolve) => producer.disconnect(5_000, () => resolve()));
    assert.deepEqual(reports, [{ err: null, opaque: 'slice-1' }], 'one answer for the slice, without error');
    const got = (await readTopic(kafka, topic)).map((m) => m.value!.toString());
    assert.deepEqual(
      got,
      messages.slice(0, 10).map((m) => m.value!.toString()),
    );
  });

  it('hands keys and header values over by length: a U+0000 inside is kept, an empty value stays empty', async () => {
    if (!('module' in batch)) return;
    const publisher = new NativePublisher({ brokers: brokers.split(','), clientId: 'batch-binding-test', log }, batch.module);
    try {
      await publisher.send([{ topic, messages: [{ key: 'a\u0000b-ü', value: Buffer.alloc(0), headers: { h: 'x\u0000y', 'ü-name': Buffer.from([0, 255]) } }] }]);
    } finally {
      await publisher.close();
    }
    const m = (await readTopic(kafka, topic)).at(-1)!;
    assert.deepEqual(m.key, Buffer.from('a\u0000b-ü'));
    assert.ok(m.value !== null && m.value.length === 0, 'empty, not null');
    assert.deepEqual(m.headers!['h'], Buffer.from('x\u0000y'));
    assert.deepEqual(m.headers!['ü-name'], Buffer.from([0, 255]));
  });

  it('a process that awaits a send stays until it is answered, and one that ends without closing exits cleanly', () => {
    const binding = fileURLToPath(new URL('../../../services/platform/kafka/batchProducer.ts', import.meta.url));
    const script = `
      import { batchKafka } from ${JSON.stringify(binding)};
      const { module } = batchKafka();
      const p = new module.Producer({ 'bootstrap.servers': ${JSON.stringify(brokers)}, 'linger.ms': 200 });
      p.on('delivery-report', (err) => console.log(err ? 'failed ' + err.message : 'delivered'));
      p.connect({}, (err) => {
        if (err) throw err;
        // Nothing else keeps this process alive: the answer must.
        p.produceSlice(${JSON.stringify(topic)}, [{ key: 'k', value: Buffer.from('from a child') }], 0, 1, 'x');
      });
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(out.trim(), 'delivered');
  });
});
