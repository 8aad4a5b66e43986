/**
 * The project's librdkafka binding (native/producer.cc, ADR 0043) on its own, against the real broker: what the
 * publisher test (publisher.test.ts, which runs every publisher through the same assertions) cannot reach through
 * NativePublisher — a slice librdkafka refuses part-way, strings with a U+0000 handed over by length, a fatal error
 * (librdkafka's own test hook), a client that cannot connect, and a process that sends and ends without closing. Skipped only where the binding is not built; CI requires it
 * where the package's librdkafka was built (CDR_TEST_NATIVE_KAFKA=required, batchBindingRequired).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { readdirSync } from 'node:fs';
import { batchKafka, type BatchProducer } from '../../../services/platform/kafka/batchProducer.ts';
import { NativePublisher, type RdError, type RdModule } from '../../../services/platform/kafka/nativePublisher.ts';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';
import { createKafka } from '../../../services/platform/kafka/kafkaClient.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import type { OutgoingMessage } from '../../../services/platform/kafka/publisher.ts';
import { PackedStrings, type PackedMessages } from '../../../services/platform/kafka/packedMessages.ts';
import { batchBindingRequired, testBrokers, uniqueName } from '../../support/testEnv.ts';
import { readTopic } from '../../support/pipelineProbe.ts';

const batch = batchKafka();
if (batchBindingRequired() && !('module' in batch))
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

  it('queues messages [from, to) of a packed batch by length (a U+0000 in a key kept), and refuses ends that do not fit before queuing any', async () => {
    if (!('module' in batch)) return;
    const producer = new batch.module.Producer({ 'bootstrap.servers': brokers, 'linger.ms': 5, dr_cb: true });
    const reports: unknown[] = [];
    const reported = new Promise<void>((resolve) =>
      producer.on('delivery-report', (err, report) => {
        reports.push([err, report.opaque]);
        resolve();
      }),
    );
    await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
    const keys = new PackedStrings();
    const ids = new PackedStrings();
    for (const k of ['k0', 'a\u0000b', '', 'k3']) keys.add(k);
    for (const id of ['c0', 'c1', 'c2-ü', 'c3']) ids.add(id);
    const k = keys.finish();
    const h = ids.finish();
    const packed: PackedMessages = {
      values: Buffer.from('v0v1v3'),
      valueEnds: Uint32Array.from([2, 4, 4, 6]),
      keys: k.bytes,
      keyEnds: k.ends,
      headerName: 'cdr_id',
      headerValues: h.bytes,
      headerEnds: h.ends,
    };
    const badEnds = { ...packed, valueEnds: Uint32Array.from([2, 4, 40, 6]) };
    assert.throws(() => producer.producePacked!(topic, badEnds, 0, 4, 'bad'), /out of order or past its buffer/);
    assert.throws(() => producer.producePacked!(topic, packed, 3, 5, 'bad'), /from and to/);
    const answer = producer.producePacked!(topic, packed, 1, 3, 'packed-1');
    assert.deepEqual(answer, { queued: 2, code: 0, message: '', fatal: false });
    await reported;
    await new Promise<void>((resolve) => producer.disconnect(5_000, () => resolve()));
    assert.deepEqual(reports, [[null, 'packed-1']], 'one answer for the slice; nothing of the refused calls');
    const got = (await readTopic(kafka, topic)).slice(-2);
    assert.deepEqual(
      got.map((m) => [m.key, m.value, m.headers]),
      [
        [Buffer.from('a\u0000b'), Buffer.from('v1'), { cdr_id: Buffer.from('c1') }],
        [Buffer.alloc(0), Buffer.alloc(0), { cdr_id: Buffer.from('c2-ü') }],
      ],
    );
  });

  it("after a fatal error (librdkafka's own test hook) the send fails retryably, the client is retired, and the retry goes through a new one", async () => {
    if (!('module' in batch)) return;
    const made: BatchProducer[] = [];
    const Base = batch.module.Producer as unknown as new (conf: Record<string, string | number | boolean>) => BatchProducer;
    const recording: RdModule = {
      librdkafkaVersion: batch.module.librdkafkaVersion,
      Producer: class extends Base {
        constructor(conf: Record<string, string | number | boolean>) {
          super(conf);
          made.push(this);
        }
      },
    };
    const publisher = new NativePublisher({ brokers: brokers.split(','), clientId: 'batch-binding-test', log: createLogger('silent') }, recording);
    const batchOf = (tag: string): OutgoingMessage[] => Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 3}`, value: Buffer.from(`${tag}-${i}`) }));
    try {
      await publisher.send([{ topic, messages: batchOf('before') }]);
      assert.equal(made.length, 1);
      // An idempotence failure as librdkafka reports one: it refuses to produce with the original code (45), fatal.
      made[0]!.injectFatalError(45, 'out of order sequence');
      await assert.rejects(
        publisher.send([{ topic, messages: batchOf('refused') }]),
        (e: unknown) => e instanceof PipelineError && e.code === 'broker_unavailable' && e.disposition === 'retry',
      );
      await publisher.send([{ topic, messages: batchOf('after') }]);
      assert.equal(made.length, 2, 'the retry went through a new client');
    } finally {
      await publisher.close();
    }
    const got = new Set((await readTopic(kafka, topic)).map((m) => m.value!.toString()));
    for (const tag of ['before', 'after']) for (let i = 0; i < 50; i++) assert.ok(got.has(`${tag}-${i}`), `${tag}-${i} arrived`);
    assert.ok(![...got].some((v) => v.startsWith('refused-')), 'nothing of the refused send was produced');
  });

  it('a fatal error while a slice is in flight answers it as -150, marked fatal (librdkafka itself says purged)', async () => {
    if (!('module' in batch)) return;
    const producer = new batch.module.Producer({ 'bootstrap.servers': brokers, 'linger.ms': 5_000 }) as BatchProducer;
    const report = new Promise<RdError | null>((resolve) => producer.on('delivery-report', (err) => resolve(err)));
    await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
    const answer = producer.produceSlice(topic, [{ key: 'k', value: Buffer.from('held by linger') }], 0, 1, 'in-flight');
    assert.equal(answer.queued, 1);
    producer.injectFatalError(45, 'out of order sequence');
    const err = await report;
    await new Promise<void>((resolve) => producer.disconnect(1_000, () => resolve()));
    assert.ok(err, 'the queued message fails');
    assert.equal(err.code, -150, `${err.code} ${err.message}`);
    assert.equal(err.isFatal, true);
  });

  it('a client that cannot connect is ended: failed connects leave no threads behind', async () => {
    if (!('module' in batch)) return;
    const Quick = batch.module.Producer as unknown as new (conf: Record<string, string | number | boolean>, connectTimeoutMs: number) => BatchProducer;
    const threads = (): number => readdirSync('/proc/self/task').length;
    const before = threads();
    for (let i = 0; i < 4; i++) {
      const producer = new Quick({ 'bootstrap.servers': '127.0.0.1:1' }, 500);
      const err = await new Promise<RdError | null>((resolve) => producer.connect({}, resolve));
      assert.ok(err && err.code !== 0, 'the connect fails');
    }
    // Each client's close runs on a thread of its own: give them a moment to end.
    const until = Date.now() + 10_000;
    while (threads() > before + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.ok(threads() <= before + 1, `${threads() - before} threads more than before four failed connects`);
  });

  it('settings librdkafka refuses when it makes the client are an error at once, and the process still ends cleanly', () => {
    const binding = fileURLToPath(new URL('../../../services/platform/kafka/batchProducer.ts', import.meta.url));
    // A CA that is not PEM passes the property check and fails in rd_kafka_new; before, the process aborted at exit
    // (SIGABRT: a clean-up hook left for the client that was never made).
    const script = `
      import { batchKafka } from ${JSON.stringify(binding)};
      const { module } = batchKafka();
      try {
        new module.Producer({ 'bootstrap.servers': '127.0.0.1:1', 'security.protocol': 'ssl', 'ssl.ca.pem': 'not a certificate' });
        console.log('made');
      } catch (err) {
        console.log('refused: ' + err.message.split('\\n')[0]);
      }
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.match(out.trim(), /^refused: .*certificate/);
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
