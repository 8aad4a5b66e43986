/**
 * Both publishers (kafkajs in its thread, librdkafka) against the real broker, with the same assertions: what goes in
 * comes out byte for byte (values, string and binary keys, headers, a null value passed on to the DLQ), across more
 * messages than one produce slice, every codec readable by the Java consumer, the size limits, and a closed publisher
 * refuses further sends with a retryable error. The librdkafka one also puts each key on the partition kafkajs's
 * DefaultPartitioner (Java's murmur2) picks.
 *
 * Where the optional librdkafka package is not installed, its half is replaced by the fallback's test (auto gives
 * kafkajs, native a named error); with CDR_TEST_NATIVE_KAFKA=required (CI) a missing package is a failure instead.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { createKafka } from '../../../services/platform/kafka/kafkaClient.ts';
import { createLogger } from '../../../services/platform/observability/logger.ts';
import { PipelineError } from '../../../services/core/errors/pipelineError.ts';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import {
  createPublisher,
  publisherInUse,
  ThreadPublisher,
  type OutgoingMessage,
  type Publisher,
  type PublisherOptions,
} from '../../../services/platform/kafka/publisher.ts';
import { NativePublisher, nativeKafka } from '../../../services/platform/kafka/nativePublisher.ts';
import { batchKafka } from '../../../services/platform/kafka/batchProducer.ts';
import { PackedStrings, type PackedMessages } from '../../../services/platform/kafka/packedMessages.ts';
import { batchBindingRequired, testBrokers, uniqueName } from '../../support/testEnv.ts';
import { readTopic } from '../../support/pipelineProbe.ts';
import { javaConsume, valuesDigest } from '../../support/javaKafka.ts';

async function createTopics(kafka: Kafka, topics: { topic: string; numPartitions: number }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics, waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

const native = nativeKafka();
const batch = batchKafka();
if (process.env['CDR_TEST_NATIVE_KAFKA'] === 'required' && !('module' in native))
  throw new Error(`CDR_TEST_NATIVE_KAFKA=required, but @confluentinc/kafka-javascript does not load: ${native.error}`);
// The project's binding is built against the package's librdkafka by `npm install` (scripts/build-native.mjs).
if (batchBindingRequired() && !('module' in batch))
  throw new Error(`CDR_TEST_NATIVE_KAFKA=required, but the batch binding (native/build/producer.node) does not load: ${batch.error}`);

const implementations: { name: string; make: (o: PublisherOptions) => Publisher }[] = [{ name: 'kafkajs (thread)', make: (o) => new ThreadPublisher(o) }];
describe('publisherInUse: the start-up banner', () => {
  it('names the client each choice publishes with here', () => {
    assert.equal(publisherInUse('kafkajs'), 'kafkajs');
    if ('module' in native) assert.equal(publisherInUse('auto'), 'librdkafka');
    else assert.match(publisherInUse('auto'), /^kafkajs \(librdkafka is not installed/);
  });
});
if ('module' in native) {
  const rd = native.module;
  implementations.push({ name: 'librdkafka', make: (o) => new NativePublisher(o, rd) });
  if ('module' in batch) {
    const binding = batch.module;
    implementations.push({ name: 'librdkafka, batch binding', make: (o) => new NativePublisher(o, binding) });
    describe('createPublisher with librdkafka installed', () => {
      it('publishes through the batch binding where it was built', async () => {
        const publisher = createPublisher({ brokers: testBrokers().split(','), clientId: 'publisher-test', log: createLogger('silent') }, 'native');
        assert.match(publisher.implementation, /^librdkafka .*batch binding/);
        await publisher.close();
      });
      it("CDR_KAFKA_PUBLISHER=native-package keeps the package's own binding", async () => {
        const publisher = createPublisher({ brokers: testBrokers().split(','), clientId: 'publisher-test', log: createLogger('silent') }, 'native-package');
        assert.match(publisher.implementation, /^librdkafka [0-9.]+$/);
        await publisher.close();
      });
    });
  }
} else {
  // Where the optional package is missing, what a user gets instead: kafkajs under `auto`, a named error under `native`.
  describe('publisher choice without librdkafka', () => {
    const opts = { brokers: testBrokers().split(','), clientId: 'publisher-test', log: createLogger('silent') };
    it('auto falls back to the kafkajs publisher', () => assert.equal(createPublisher(opts, 'auto').implementation, 'kafkajs (thread)'));
    it('the start-up banner says kafkajs, and how to install librdkafka', () =>
      assert.equal(publisherInUse('auto'), 'kafkajs (librdkafka is not installed: CKJS_LINKING=dynamic npm install)'));
    it('native refuses, naming the variable', () =>
      assert.throws(
        () => createPublisher(opts, 'native'),
        (e: unknown) => e instanceof PipelineError && e.code === 'config_invalid' && e.message.includes('CDR_KAFKA_PUBLISHER=native'),
      ));
  });
}

for (const impl of implementations)
  describe(`publisher: ${impl.name}`, () => {
    const brokers = testBrokers().split(',');
    const log = createLogger('warn');
    let kafka: Kafka;
    const topicA = uniqueName('pub.a');
    const topicB = uniqueName('pub.b');

    before(async () => {
      kafka = createKafka(brokers, 'publisher-test', log);
      await createTopics(kafka, [
        { topic: topicA, numPartitions: 3 },
        { topic: topicB, numPartitions: 1 },
      ]);
    });

    it('delivers every message intact, in order per key, across several produce slices', async () => {
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      const many: OutgoingMessage[] = Array.from({ length: 4500 }, (_, i) => ({
        key: `acct-${i % 7}`,
        value: Buffer.concat([Buffer.from(`v${i}:`), randomBytes(i % 50)]),
        headers: { cdr_id: `c-${i}` },
      }));
      const odd: OutgoingMessage[] = [
        { key: null, value: null, headers: { '__connect.errors.stage': 'VALUE_CONVERTER', original: Buffer.from([0, 1, 2, 255]) } },
        { key: Buffer.from([9, 8, 7]), value: Buffer.alloc(0) },
      ];
      try {
        await publisher.start();
        await publisher.send([
          { topic: topicA, messages: many },
          { topic: topicB, messages: odd },
        ]);
      } finally {
        await publisher.close();
      }
      const a = await readTopic(kafka, topicA);
      assert.equal(a.length, many.length);
      const byCdr = new Map(a.map((m) => [String(m.headers!['cdr_id']), m]));
      for (const [i, sent] of many.entries()) {
        const got = byCdr.get(`c-${i}`);
        assert.ok(got, `message c-${i} arrived`);
        assert.equal(got.key!.toString(), sent.key);
        assert.deepEqual(got.value, sent.value);
      }
      // Same key → same partition, in send order.
      const perKey = new Map<string, number[]>();
      for (const m of [...a].sort((x, y) => Number(x.offset) - Number(y.offset))) {
        const list = perKey.get(m.key!.toString()) ?? [];
        list.push(Number(String(m.headers!['cdr_id']).slice(2)));
        perKey.set(m.key!.toString(), list);
      }
      for (const list of perKey.values())
        assert.deepEqual(
          list,
          [...list].sort((x, y) => x - y),
        );

      const b = (await readTopic(kafka, topicB)).sort((x, y) => Number(x.offset) - Number(y.offset));
      assert.equal(b.length, 2);
      assert.equal(b[0]!.value, null);
      assert.equal(b[0]!.key, null);
      assert.deepEqual(b[0]!.headers!['original'], Buffer.from([0, 1, 2, 255]));
      assert.equal(String(b[0]!.headers!['__connect.errors.stage']), 'VALUE_CONVERTER');
      assert.deepEqual(b[1]!.key, Buffer.from([9, 8, 7]));
      assert.equal(b[1]!.value!.length, 0);
    });

    it('a packed batch (ingest’s form) arrives as its messages would: values, keys, cdr_id headers, each key on its partition', async () => {
      const topic = uniqueName('pub.packed');
      await createTopics(kafka, [{ topic, numPartitions: 5 }]);
      // More than one produce slice; keys and header values with multi-byte characters, an empty key, an empty value.
      const sent: OutgoingMessage[] = Array.from({ length: 4500 }, (_, i) => ({
        key: i === 7 ? '' : i % 3 === 0 ? `acct-${i % 11}` : i % 3 === 1 ? `Kunde-Jürgen-${i % 5}` : `${i % 4}-日本`,
        value: i === 8 ? Buffer.alloc(0) : Buffer.concat([Buffer.from(`v${i}:`), randomBytes(i % 50)]),
        headers: { cdr_id: i % 2 === 0 ? `c-${i}` : `c-${i}-ü` },
      }));
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      try {
        await publisher.send([{ topic, packed: packedOf(sent) }]);
      } finally {
        await publisher.close();
      }
      const got = await readWithPartitions(kafka, topic, sent.length);
      assert.equal(got.length, sent.length);
      const byCdr = new Map(got.map((m) => [String(m.headers!['cdr_id']), m]));
      const partitionOf = javaPartitioner(topic, 5);
      for (const m of sent) {
        const id = m.headers!['cdr_id'] as string;
        const one = byCdr.get(id);
        assert.ok(one, `${id} arrived`);
        assert.equal(Object.keys(one.headers!).length, 1, 'one header');
        assert.notEqual(one.key, null, 'an empty key stays a key');
        assert.equal(one.key!.toString(), m.key);
        assert.deepEqual(one.value ?? null, m.value, id);
        assert.equal(one.partition, partitionOf(m.key as string), `${id}: partition of its key`);
      }
    });

    it("puts each key on the partition kafkajs's DefaultPartitioner (Java's murmur2) picks", async () => {
      const topic = uniqueName('pub.keys');
      await createTopics(kafka, [{ topic, numPartitions: 5 }]);
      // Account-like keys, ASCII and not: the hash is over the key's UTF-8 bytes in both clients.
      const keys = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `acct-${i}` : i % 3 === 1 ? `Kunde-Jürgen-${i}` : `${i}-日本`));
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      try {
        await publisher.send([{ topic, messages: keys.map((key) => ({ key, value: Buffer.from(key) })) }]);
      } finally {
        await publisher.close();
      }
      const got = await partitionsOfKeys(kafka, topic, keys.length);
      const partitionOf = javaPartitioner(topic, 5);
      const expected = new Map(keys.map((key) => [key, partitionOf(key)]));
      assert.equal(got.size, keys.length);
      assert.ok(new Set(got.values()).size > 1, 'keys spread over several partitions');
      for (const key of keys) assert.equal(got.get(key), expected.get(key), key);
    });

    it('refuses to send after close, with a retryable error; close is idempotent', async () => {
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      await publisher.start();
      await publisher.close();
      await publisher.close();
      await assert.rejects(
        publisher.send([{ topic: topicB, messages: [{ key: 'k', value: Buffer.from('x') }] }]),
        (err: unknown) => err instanceof PipelineError && err.code === 'broker_unavailable',
      );
    });

    // The codecs are librdkafka's, configured alike for both of its bindings: proven through the batch binding (the
    // one `auto` uses), not again through the package's (15 s of Java consumers per run).
    if (impl.name !== 'librdkafka' || !('module' in batch))
      it('compresses with each codec so that the Java consumer reads every message back', async () => {
        for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
          const topic = uniqueName(`pub.${codec}`);
          await createTopics(kafka, [{ topic, numPartitions: 2 }]);
          const publisher = impl.make({ brokers, clientId: 'publisher-test', log, compression: codec });
          const messages: OutgoingMessage[] = Array.from({ length: 3000 }, (_, i) => ({
            key: `k${i % 13}`,
            value: Buffer.from(`${codec}-${i}-${'z'.repeat(i % 400)}`),
          }));
          try {
            await publisher.send([{ topic, messages }]);
          } finally {
            await publisher.close();
          }
          const read = await javaConsume(brokers.join(','), topic, messages.length);
          assert.equal(read.count, messages.length, codec);
          assert.equal(read.digest, valuesDigest(messages.map((m) => m.value)), codec);
        }
      });

    it('slices by bytes, so large messages together never exceed the broker limit; one message over the limit is record_too_large', async () => {
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      // 6 × 400 KB plus small ones: more than 2 MB in one send, to a broker whose message.max.bytes is 1 MiB.
      const big: OutgoingMessage[] = Array.from({ length: 6 }, (_, i) => ({
        key: 'same-partition',
        value: randomBytes(400 * 1024),
        headers: { n: String(i) },
      }));
      const small: OutgoingMessage[] = Array.from({ length: 500 }, (_, i) => ({ key: 'same-partition', value: Buffer.from(`s${i}`) }));
      try {
        await publisher.send([{ topic: topicB, messages: [...big, ...small] }]);
        await assert.rejects(
          publisher.send([{ topic: topicB, messages: [{ key: 'x', value: randomBytes(950 * 1024) }] }]),
          (err: unknown) => err instanceof PipelineError && err.code === 'record_too_large' && err.disposition === 'dead-letter',
        );
      } finally {
        await publisher.close();
      }
      const b = await readTopic(kafka, topicB);
      assert.equal(b.filter((m) => m.value?.length === 400 * 1024).length, 6);
      // Publishing is at least once (a retried request may land twice: seen once in CI): every small message, none lost.
      // Small by size and form, not by a leading 's' alone: a random 400 KB value starts with one once in 256 (failed
      // CI, 2026-12-05); the topic also holds an earlier test's null and empty values.
      const smallSeen = new Set(
        b
          .filter((m) => m.value !== null && m.value.length < 16)
          .map((m) => m.value!.toString())
          .filter((v) => /^s\d+$/.test(v)),
      );
      assert.deepEqual([...smallSeen].sort(), small.map((m) => String(m.value)).sort());
    });

    it('leaves the event loop free during a large send (an ingest batch of 20,000 and more), and delivers all of it', async () => {
      const topic = uniqueName('pub.large');
      await createTopics(kafka, [{ topic, numPartitions: 2 }]);
      const N = 200_000;
      const messages: OutgoingMessage[] = Array.from({ length: N }, (_, i) => ({
        key: `acct-${i % 31}`,
        value: Buffer.from(`large-${i}`),
        headers: { cdr_id: `c-${i}` },
      }));
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      await publisher.start();
      // The longest the event loop went without running a 2 ms timer while the send was under way.
      let last = performance.now();
      let longestGap = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
      }, 2);
      try {
        await publisher.send([{ topic, messages }]);
      } finally {
        clearInterval(ticker);
        await publisher.close();
      }
      // Queued in one piece, 80,000 produce calls held the thread ~0.4 s or more here, so 200,000 hold it ~1 s; in slices
      // of ~8 ms, a request of `cdr start`'s API waits a slice at most. 300 ms leaves room for a loaded machine's garbage
      // collections and a busy host's scheduling (150 ms failed once at 163 ms, the host's load ~4, 2026-12-07).
      assert.ok(longestGap < 300, `the event loop was held ${longestGap.toFixed(0)} ms in one piece`);
      const admin2 = kafka.admin();
      await admin2.connect();
      const offsets = await admin2.fetchTopicOffsets(topic);
      await admin2.disconnect();
      assert.equal(
        offsets.reduce((n, p) => n + Number(p.high), 0),
        N,
      );
    });

    it('a message the broker refuses fails its send as record_too_large every time, while sends beside it deliver all of theirs', async () => {
      // The topic takes 2,000-byte messages at most; the client's own limit (1 MiB) lets a 5,000-byte one through, so
      // only the broker's answer can fail the send. A publisher that learnt of success from a flush rather than from
      // each message's report let such a send succeed (ADR 0032, addendum of 2026-12-05): the failure must be seen.
      const strict = uniqueName('pub.strict');
      const roomy = uniqueName('pub.roomy');
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createTopics({
          topics: [
            { topic: strict, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] },
            { topic: roomy, numPartitions: 3 },
          ],
          waitForLeaders: true,
        });
      } finally {
        await admin.disconnect();
      }
      const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
      await publisher.start();
      const rounds = 12;
      const perRound = 400;
      try {
        for (let round = 0; round < rounds; round++) {
          const good = Array.from({ length: perRound }, (_, i) => ({ key: `acct-${i % 13}`, value: Buffer.from(`r${round}-m${i}`) }));
          const bad = [{ key: 'x', value: randomBytes(5_000) }];
          const sends = Promise.allSettled([publisher.send([{ topic: roomy, messages: good }]), publisher.send([{ topic: strict, messages: bad }])]);
          // This thread busy while the broker answers (as under ingest's load): the flush's answer and the failure
          // report are then both waiting when the event loop next looks, and are served in one turn.
          await new Promise((resolve) => setImmediate(resolve));
          const until = performance.now() + 150;
          while (performance.now() < until);
          const [ok, refused] = await sends;
          assert.equal(ok.status, 'fulfilled', `round ${round}: ${ok.status === 'rejected' ? String(ok.reason) : ''}`);
          assert.equal(refused.status, 'rejected', `round ${round}: the refused message's send succeeded`);
          const err: unknown = refused.reason;
          assert.ok(err instanceof PipelineError && err.code === 'record_too_large', `round ${round}: ${String(err)}`);
        }
      } finally {
        await publisher.close();
      }
      const got = new Set((await readTopic(kafka, roomy)).map((m) => m.value!.toString()));
      assert.equal(got.size, rounds * perRound, 'every message of the sends beside the refused ones arrived');
      const admin2 = kafka.admin();
      await admin2.connect();
      await admin2.deleteTopics({ topics: [strict, roomy] }).catch(() => undefined);
      await admin2.disconnect();
    });

    if (impl.name.startsWith('librdkafka'))
      it('a close while a large send is still being queued fails that send retryably, and nothing hangs', async () => {
        const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
        await publisher.start();
        const messages: OutgoingMessage[] = Array.from({ length: 200_000 }, (_, i) => ({ key: `k${i % 5}`, value: Buffer.from(`c${i}`) }));
        const sending = publisher.send([{ topic: topicB, messages }]);
        // Its outcome is awaited from now on: the send may fail while close() is still flushing.
        const refused = assert.rejects(
          sending,
          (err: unknown) => err instanceof PipelineError && err.code === 'broker_unavailable' && err.disposition === 'retry',
        );
        // The first slice queued part of the batch; the close comes in at its first pause.
        await new Promise((resolve) => setImmediate(resolve));
        await publisher.close();
        await refused;
      });

    if (impl.name.startsWith('librdkafka'))
      it('never polls the client from this thread: delivery reports come from librdkafka’s thread, so a disconnect races nothing (30 publishers opened, used, closed)', async () => {
        // A poll from JavaScript that lands while a disconnect deletes the client (on a libuv thread) crashes the
        // process: once in CI at a test's tear-down (SIGABRT, "pure virtual method called"), and within 20 cycles when
        // polled in a loop (2026-12-04). The library's own poll is counted here, on the real producer.
        const prototype = (native as { module: { Producer: { prototype: { poll: () => unknown } } } }).module.Producer.prototype;
        const poll = prototype.poll;
        let polls = 0;
        prototype.poll = function (this: unknown) {
          polls++;
          return poll.call(this);
        };
        try {
          for (let cycle = 0; cycle < 30; cycle++) {
            const publisher = impl.make({ brokers, clientId: 'publisher-test', log });
            await publisher.start();
            const messages: OutgoingMessage[] = Array.from({ length: 2_000 }, (_, i) => ({
              key: `k${i % 11}`,
              value: Buffer.from(`cycle ${cycle} message ${i}`),
            }));
            // Half the cycles close once the send is answered; half while it still waits for delivery reports (the
            // disconnect then flushes with reports under way): that send either succeeds or fails retryably, never hangs.
            const sending = publisher.send([{ topic: topicA, messages }]);
            if (cycle % 2 === 0) await sending;
            else void sending.catch(() => undefined);
            await publisher.close();
            if (cycle % 2 === 1)
              await sending.then(
                () => undefined,
                (err: unknown) => assert.ok(err instanceof PipelineError && err.disposition === 'retry', `cycle ${cycle}: ${String(err)}`),
              );
          }
        } finally {
          prototype.poll = poll;
        }
        assert.equal(polls, 0, 'the producer was polled from the JavaScript thread');
      });

    after(async () => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topicA, topicB] }).catch(() => undefined);
      await admin.disconnect();
    });
  });

/** The partition kafkajs's DefaultPartitioner (Java's murmur2) picks for a key, on a topic of `count` partitions. */
function javaPartitioner(topic: string, count: number): (key: string) => number {
  const partitionMetadata: PartitionMetadata[] = Array.from({ length: count }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
    offlineReplicas: [],
  }));
  const pick = Partitioners.DefaultPartitioner();
  return (key) => pick({ topic, partitionMetadata, message: { key, value: null } });
}

/** Messages with string keys and one string header, packed as ingest's prepare worker packs them. */
function packedOf(messages: readonly OutgoingMessage[]): PackedMessages {
  const keys = new PackedStrings();
  const ids = new PackedStrings();
  const values = Buffer.concat(messages.map((m) => m.value!));
  const valueEnds = new Uint32Array(messages.length);
  let at = 0;
  messages.forEach((m, i) => {
    keys.add(m.key as string);
    ids.add(m.headers!['cdr_id'] as string);
    at += m.value!.length;
    valueEnds[i] = at;
  });
  const k = keys.finish();
  const h = ids.finish();
  return { values, valueEnds, keys: k.bytes, keyEnds: k.ends, headerName: 'cdr_id', headerValues: h.bytes, headerEnds: h.ends };
}

/** Each message's key and the partition it landed on (every key sent once). */
async function partitionsOfKeys(kafka: Kafka, topic: string, count: number): Promise<Map<string, number>> {
  return new Map((await readWithPartitions(kafka, topic, count)).map((m) => [m.key!.toString(), m.partition]));
}

/** The first `count` messages of a topic, each with its partition. */
async function readWithPartitions(kafka: Kafka, topic: string, count: number): Promise<(KafkaMessage & { partition: number })[]> {
  const out: (KafkaMessage & { partition: number })[] = [];
  const consumer = kafka.consumer({ groupId: `keys-${topic}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => {
        void consumer.run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) out.push({ ...m, partition: batch.partition });
            if (out.length >= count) resolve();
          },
        });
      }),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`reading ${topic} timed out`)), 60_000))),
    ]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return out;
}
