/**
 * The publisher thread (see publisher.ts): one idempotent kafkajs producer, fed packed messages by ingest's
 * main thread, answering each request once the broker acknowledged all of it (acks=-1) or with the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type LogEntry, type Message, type Producer } from 'kafkajs';
import type { PipelineErrorCode } from '../../core/index.ts';
import { classifyKafkaError } from './errors.ts';

export interface PublisherWorkerData {
  brokers: string[];
  clientId: string;
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

export type PublisherRequest = { type: 'send'; id: number; topics: PackedTopicMessages[] } | { type: 'stop' };

export type PublisherReply =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'done'; id: number; error?: string; code?: PipelineErrorCode }
  | { type: 'log'; level: 'error' | 'warn' | 'debug'; message: string; fields: Record<string, unknown> };

/**
 * Messages per produce request: ~250 KB at ~130 B per pseudonymised event, far below the broker's 1 MiB
 * message.max.bytes per partition batch; kafkajs's per-partition grouping is also quadratic in one send.
 */
const PUBLISH_SLICE = 2000;

const port = parentPort;
if (!port) throw new Error('publisherWorker.ts runs as a worker thread (services/platform/kafka/publisher.ts)');
const data = (workerData as { publisher: PublisherWorkerData }).publisher;

const reply = (m: PublisherReply): void => port.postMessage(m);

const kafka = new Kafka({
  clientId: data.clientId,
  brokers: data.brokers,
  logLevel: KafkaLogLevel.WARN,
  retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
  logCreator: () => (entry: LogEntry) => {
    const { message, ...rest } = entry.log as { message: string } & Record<string, unknown>;
    const level = entry.level <= KafkaLogLevel.ERROR ? 'error' : entry.level === KafkaLogLevel.WARN ? 'warn' : 'debug';
    reply({ type: 'log', level, message, fields: { broker: rest['broker'], error: rest['error'] } });
  },
});
const producer: Producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: Partitioners.DefaultPartitioner,
});

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

async function send(topics: PackedTopicMessages[]): Promise<void> {
  const all = topics.flatMap(unpack);
  // Slices one after the other, as the broker's per-request limit and kafkajs's grouping cost require.
  for (let i = 0; i < all.length; i += PUBLISH_SLICE) {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of all.slice(i, i + PUBLISH_SLICE)) {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    }
    await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
  }
}

// Requests are handled one at a time, in order: one producer, one send in flight, as before the thread.
let queue: Promise<void> = Promise.resolve();
port.on('message', (m: PublisherRequest) => {
  if (m.type === 'stop') {
    queue = queue.then(async () => {
      await producer.disconnect().catch(() => undefined);
      port.close();
    });
    return;
  }
  queue = queue.then(async () => {
    try {
      await send(m.topics);
      reply({ type: 'done', id: m.id });
    } catch (err) {
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
