/**
 * The publisher thread (see publisher.ts): one idempotent kafkajs producer, fed packed messages by ingest's
 * main thread, answering each request once the broker acknowledged all of it (acks=-1) or with the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type LogEntry, type Message, type Producer } from 'kafkajs';
import type { PipelineErrorCode } from '../../core/index.ts';
import type { CompressionName } from '../config/config.ts';
import { compressionType, registerCodecs } from './codecs.ts';
import { classifyKafkaError } from './errors.ts';
import { MAX_MESSAGE_BYTES, PUBLISH_SLICE, SLICE_BYTES } from './limits.ts';
import { PartitionedSender } from './partitionedSend.ts';
import type { KafkaClientSecurity } from './security.ts';

export interface PublisherWorkerData {
  brokers: string[];
  clientId: string;
  compression: CompressionName;
  security: KafkaClientSecurity;
}

export interface PackedTopicMessages {
  topic: string;
  /** Every message's value, back to back. */
  values: Uint8Array;
  /** End offset of each message's value in `values`. */
  ends: Uint32Array;
  keys: (string | Uint8Array | null)[];
  headers: (Readonly<Record<string, string | Uint8Array>> | null)[];
  /** Indices of messages whose value is null (tombstones passed on to the DLQ). */
  nullValues: number[];
}

/**
 * A send arrives as zero or more `part`s and then its `send` (same id), in order: the worker sends all of them as one
 * request and answers once.
 */
export type PublisherRequest =
  { type: 'part'; id: number; topics: PackedTopicMessages[] } | { type: 'send'; id: number; topics: PackedTopicMessages[] } | { type: 'stop' };

export type PublisherReply =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'done'; id: number; error?: string; code?: PipelineErrorCode }
  | { type: 'log'; level: 'error' | 'warn' | 'debug'; message: string; fields: Record<string, unknown> };

// A produce request carries at most PUBLISH_SLICE messages and SLICE_BYTES bytes (before compression), so no
// partition's record batch can exceed the broker's message.max.bytes whatever the messages' sizes; kafkajs's
// per-partition grouping is also quadratic in the messages of one send.

const port = parentPort;
if (!port) throw new Error('publisherWorker.ts runs as a worker thread (services/platform/kafka/publisher.ts)');
const data = (workerData as { publisher: PublisherWorkerData }).publisher;

const reply = (m: PublisherReply): void => port.postMessage(m);

registerCodecs();
const compression = compressionType(data.compression);

const kafka = new Kafka({
  clientId: data.clientId,
  brokers: data.brokers,
  ...(data.security.ssl ? { ssl: data.security.ssl } : {}),
  ...(data.security.sasl ? { sasl: data.security.sasl } : {}),
  logLevel: KafkaLogLevel.WARN,
  retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
  logCreator: () => (entry: LogEntry) => {
    const { message, ...rest } = entry.log as { message: string } & Record<string, unknown>;
    const level = entry.level <= KafkaLogLevel.ERROR ? 'error' : entry.level === KafkaLogLevel.WARN ? 'warn' : 'debug';
    reply({ type: 'log', level, message, fields: { broker: rest['broker'], error: rest['error'] } });
  },
});
const newProducer = (): Producer =>
  kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
let producer: Producer = newProducer();
const sender = new PartitionedSender(kafka, () => producer);

/**
 * After a partition leader changes, kafkajs's idempotent producer can lose step with the broker's sequence numbers
 * (OUT_OF_ORDER_SEQUENCE_NUMBER; librdkafka and the Java client bump the producer epoch there, kafkajs does not), and
 * every later send on that producer fails. Such a producer is replaced by a new one (a new producer id, sequences from
 * zero) and the send is reported as retryable: the caller publishes the batch again (at least once; consumers drop
 * copies by cdr_id).
 */
const DESYNCHRONISED = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);

function desynchronised(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 10; e = (e as { cause?: unknown }).cause, i++) {
    const type = typeof e === 'object' && e !== null && 'type' in e ? String(e.type) : '';
    if (DESYNCHRONISED.has(type) || /out of order sequence number/i.test(e instanceof Error ? e.message : '')) return true;
  }
  return false;
}

function asBuffer(v: string | Uint8Array): string | Buffer {
  return typeof v === 'string' ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function unpack(p: PackedTopicMessages): { topic: string; message: Message }[] {
  const values = Buffer.from(p.values.buffer, p.values.byteOffset, p.values.byteLength);
  const out = new Array<{ topic: string; message: Message }>(p.ends.length);
  const nulls = new Set(p.nullValues);
  let start = 0;
  for (let i = 0; i < p.ends.length; i++) {
    const end = p.ends[i]!;
    const key = p.keys[i] ?? null;
    const h = p.headers[i];
    let headers: Record<string, string | Buffer> | undefined;
    if (h) {
      headers = {};
      for (const k in h) headers[k] = asBuffer(h[k]!);
    }
    out[i] = {
      topic: p.topic,
      message: { key: key === null ? null : asBuffer(key), value: nulls.has(i) ? null : values.subarray(start, end), ...(headers ? { headers } : {}) },
    };
    start = end;
  }
  return out;
}

function sizeOf(m: Message): number {
  let n = 64 + (m.value ? (m.value as Buffer).length : 0) + (m.key ? m.key.length : 0);
  for (const k in m.headers ?? {}) n += k.length + String((m.headers as Record<string, Buffer | string>)[k]!).length;
  return n;
}

class MessageTooLarge extends Error {
  override readonly name = 'MessageTooLarge';
  readonly type = 'MESSAGE_TOO_LARGE';
}

async function send(topics: PackedTopicMessages[]): Promise<void> {
  const all = topics.flatMap(unpack);
  // Slices one after the other, bounded by count and bytes, as the broker's limits and kafkajs's grouping cost require.
  let i = 0;
  while (i < all.length) {
    const byTopic = new Map<string, Message[]>();
    let bytes = 0;
    let n = 0;
    for (; i < all.length && n < PUBLISH_SLICE; i++, n++) {
      const { topic, message } = all[i]!;
      const size = sizeOf(message);
      if (size > MAX_MESSAGE_BYTES) throw new MessageTooLarge(`a ${size}-byte message for ${topic} is over the ${MAX_MESSAGE_BYTES}-byte limit`);
      if (n > 0 && bytes + size > SLICE_BYTES) break;
      bytes += size;
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    }
    // One send per topic and partition (partitionedSend.ts: kafkajs's multi-partition send can drop a partition whose
    // leader moved during the send); the slice's sends are in flight together.
    await Promise.all([...byTopic].map(([topic, messages]) => sender.send(topic, messages, { acks: -1, compression })));
  }
}

// Requests are handled one at a time, in order: one producer, one send in flight, as before the thread.
let queue: Promise<void> = Promise.resolve();
const partsOf = new Map<number, PackedTopicMessages[]>();
port.on('message', (m: PublisherRequest) => {
  if (m.type === 'part') {
    const held = partsOf.get(m.id);
    if (held) held.push(...m.topics);
    else partsOf.set(m.id, [...m.topics]);
    return;
  }
  if (m.type === 'stop') {
    queue = queue.then(async () => {
      await producer.disconnect().catch(() => undefined);
      await sender.close();
      port.close();
    });
    return;
  }
  const topics = [...(partsOf.get(m.id) ?? []), ...m.topics];
  partsOf.delete(m.id);
  queue = queue.then(async () => {
    try {
      await send(topics);
      reply({ type: 'done', id: m.id });
    } catch (err) {
      if (desynchronised(err)) {
        reply({
          type: 'log',
          level: 'warn',
          message: 'idempotent producer out of step with the broker after a leader change: replaced by a new producer; the batch is sent again',
          fields: {},
        });
        const old = producer;
        producer = newProducer();
        await old.disconnect().catch(() => undefined);
        try {
          await producer.connect();
        } catch {
          // The next send connects (kafkajs connects on demand); the batch is retried either way.
        }
        reply({ type: 'done', id: m.id, error: `Kafka: ${err instanceof Error ? err.message : String(err)} (producer replaced)`, code: 'broker_unavailable' });
        return;
      }
      const e = classifyKafkaError(err);
      reply({ type: 'done', id: m.id, error: e.message, code: e.code });
    }
  });
});

try {
  await producer.connect();
  reply({ type: 'ready' });
} catch (err) {
  reply({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
  port.close();
}
