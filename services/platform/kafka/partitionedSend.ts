import { Partitioners, type Admin, type CompressionTypes, type Kafka, type Message, type PartitionMetadata, type Producer } from 'kafkajs';

/**
 * kafkajs 2.2.4 loses messages when, during one send's own retries, a partition's leadership moves to a broker that
 * already answered for another partition of the same send: the retry skips every broker that has an answer
 * (src/producer/sendMessages.js, `responsePerBroker`), so the moved partition's messages are never sent again and the
 * send resolves as if they had been (upstream: tulios/kafkajs#1798, open). This is how acknowledged records went
 * missing across a killed leader in tests/integrity/brokerLoss.test.ts. A send whose messages all go to one
 * partition cannot fall into it — each attempt has one leader to answer — so messages are split here by the
 * partition kafkajs's DefaultPartitioner picks (the same one it would pick inside the send) and each partition gets
 * its own send, all of them in flight together.
 */
export class PartitionedSender {
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly metadata = new Map<string, { partitions: Promise<PartitionMetadata[]>; at: number }>();
  /** One admin client, connected once however many sends ask at the same time (each would otherwise open its own). */
  private admin: Promise<Admin> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly producer: () => Producer,
    /** How long a topic's partition list is reused; partitions are only ever added, so a stale list loses nothing. */
    private readonly metadataMaxAgeMs = 60_000,
  ) {}

  /**
   * Sends `messages` to `topic`, one send per partition (setting each message's `partition`); resolves when every
   * partition's send was acknowledged.
   */
  async send(topic: string, messages: readonly Message[], opts: { acks: number; compression?: CompressionTypes; timeout?: number }): Promise<void> {
    if (messages.length === 0) return;
    const byPartition = splitByPartition(topic, messages, await this.partitionsOf(topic), this.partitioner);
    const producer = this.producer();
    try {
      await Promise.all([...byPartition.values()].map((ms) => producer.send({ topic, messages: ms, ...opts })));
    } catch (err) {
      // A failed send may mean the topic changed (more partitions); the next send reads them again.
      this.metadata.delete(topic);
      throw err;
    }
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    this.metadata.clear();
    await admin?.then((a) => a.disconnect()).catch(() => undefined);
  }

  /** The topic's partitions, read once for concurrent sends and reused for metadataMaxAgeMs. */
  private partitionsOf(topic: string): Promise<PartitionMetadata[]> {
    const known = this.metadata.get(topic);
    if (known && Date.now() - known.at < this.metadataMaxAgeMs) return known.partitions;
    const partitions = this.fetchPartitions(topic);
    this.metadata.set(topic, { partitions, at: Date.now() });
    // A failed read is not kept: the next send reads again.
    partitions.catch(() => {
      if (this.metadata.get(topic)?.partitions === partitions) this.metadata.delete(topic);
    });
    return partitions;
  }

  private async fetchPartitions(topic: string): Promise<PartitionMetadata[]> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      const connected = admin.connect().then(() => admin);
      this.admin = connected;
      // A failed connection is not kept either.
      connected.catch(() => {
        if (this.admin === connected) this.admin = undefined;
      });
    }
    const admin = await this.admin;
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = topics[0]?.partitions ?? [];
    if (partitions.length === 0) throw new Error(`topic ${topic} has no partitions in the cluster's metadata`);
    return partitions;
  }
}

type Partitioner = ReturnType<typeof Partitioners.DefaultPartitioner>;

/** The messages grouped by partition; each message is given its partition (so kafkajs does not pick again). */
export function splitByPartition(
  topic: string,
  messages: readonly Message[],
  partitionMetadata: PartitionMetadata[],
  partitioner: Partitioner,
): Map<number, Message[]> {
  const out = new Map<number, Message[]>();
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    message.partition = partition;
    const list = out.get(partition);
    if (list) list.push(message);
    else out.set(partition, [message]);
  }
  return out;
}
