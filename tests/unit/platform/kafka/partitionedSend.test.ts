import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners, type Kafka, type Message, type PartitionMetadata, type Producer } from 'kafkajs';
import { PartitionedSender, splitByPartition } from '../../../../services/platform/kafka/partitionedSend.ts';

const metadata = (n: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: n }, (_, partitionId) => ({
    partitionId,
    leader: leaderless.includes(partitionId) ? -1 : 1,
    replicas: [1],
    isr: [1],
    offlineReplicas: [],
    partitionErrorCode: 0,
  }));

describe('splitByPartition (one kafkajs send per partition)', () => {
  it('puts each keyed message where kafkajs itself would, keeping the send order within a partition', () => {
    const partitions = metadata(6);
    const messages: Message[] = Array.from({ length: 3000 }, (_, i) => ({ key: i % 3 === 0 ? Buffer.from([i & 255, i >> 8]) : `cdr-${i}`, value: String(i) }));
    // kafkajs's own choice, from a partitioner of its own, on copies (splitByPartition sets `partition`).
    const kafkajsChoice = Partitioners.DefaultPartitioner();
    const expected = messages.map((m) => kafkajsChoice({ topic: 't', partitionMetadata: partitions, message: { ...m } }));
    const split = splitByPartition('t', messages, partitions, Partitioners.DefaultPartitioner());

    assert.equal(
      [...split.values()].reduce((n, ms) => n + ms.length, 0),
      messages.length,
    );
    assert.ok(split.size === 6, `all six partitions used by 3000 keys, got ${split.size}`);
    for (const [partition, ms] of split) {
      const values = ms.map((m) => Number(m.value));
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        `partition ${partition} keeps the send order`,
      );
      for (const m of ms) {
        assert.equal(m.partition, partition);
        assert.equal(expected[Number(m.value)], partition, `message ${String(m.value)} on kafkajs's partition`);
      }
    }
  });

  it('keeps a partition a message already names, and spreads keyless messages over partitions that have a leader', () => {
    const partitions = metadata(4, [2]);
    const named = splitByPartition('t', [{ key: 'k', value: 'x', partition: 3 }], partitions, Partitioners.DefaultPartitioner());
    assert.deepEqual([...named.keys()], [3]);
    const keyless = splitByPartition(
      't',
      Array.from({ length: 30 }, (_, i) => ({ key: null, value: String(i) })),
      partitions,
      Partitioners.DefaultPartitioner(),
    );
    assert.deepEqual([...keyless.keys()].sort(), [0, 1, 3], 'round robin, never the leaderless partition 2');
    for (const ms of keyless.values()) assert.equal(ms.length, 10);
  });
});

describe('PartitionedSender', () => {
  /** kafkajs stand-ins that count what the sender asks of them (the real client is exercised by publisher.test.ts). */
  function fakeKafka(partitions: number) {
    const counts = { admins: 0, connects: 0, metadataReads: 0, disconnects: 0, sends: [] as { partition: number; n: number }[] };
    const kafka = {
      admin: () => {
        counts.admins++;
        return {
          connect: async () => {
            counts.connects++;
            await new Promise((r) => setTimeout(r, 20));
          },
          fetchTopicMetadata: async () => {
            counts.metadataReads++;
            await new Promise((r) => setTimeout(r, 5));
            return { topics: [{ name: 't', partitions: metadata(partitions) }] };
          },
          disconnect: async () => {
            counts.disconnects++;
          },
        };
      },
    };
    const producer = {
      send: async ({ messages }: { messages: Message[] }) => {
        counts.sends.push({ partition: messages[0]!.partition!, n: messages.length });
        return [];
      },
    };
    return { counts, kafka: kafka as unknown as Kafka, producer: producer as unknown as Producer };
  }

  it('opens one admin client and reads the partitions once for sends made at the same time, and closes it', async () => {
    const { counts, kafka, producer } = fakeKafka(4);
    const sender = new PartitionedSender(kafka, () => producer);
    const batch = (k: number): Message[] => Array.from({ length: 100 }, (_, i) => ({ key: `k${k}-${i}`, value: 'v' }));
    await Promise.all([0, 1, 2, 3].map((k) => sender.send('t', batch(k), { acks: -1 })));
    assert.equal(counts.admins, 1, 'one admin client (four concurrent first sends once opened four and kept one open for ever)');
    assert.equal(counts.metadataReads, 1);
    assert.equal(counts.sends.length, 16, 'four sends × four partitions');
    assert.equal(
      counts.sends.reduce((n, s) => n + s.n, 0),
      400,
    );
    await sender.close();
    assert.equal(counts.disconnects, 1);
  });
});
