import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Kafka, logLevel as KafkaLogLevel, type Admin, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from '../config/index.ts';
import { RepeatedLines } from '../observability/index.ts';
import { DEFAULT_RECORD_LIMITS, registerCodecs } from './codecs.ts';
import type { RecordLimits } from './recordStream.ts';
import type { KafkaClientSecurity } from './security.ts';
import { identifierTopicConfigs, planConfigEntries } from './topicPolicy.ts';

/** kafkajs's files that patches/kafkajs+2.2.4.patch changes (ADR 0036), each carrying the patch's marker. */
export const PATCHED_KAFKAJS_FILES = [
  'kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js',
  'kafkajs/src/protocol/recordBatch/record/v0/decoder.js',
  'kafkajs/src/protocol/messageSet/decoder.js',
  'kafkajs/src/consumer/offsetManager/index.js',
  'kafkajs/src/consumer/consumerGroup.js',
  'kafkajs/src/index.js',
] as const;

/**
 * The patched kafkajs files that do not carry the patch (an install with --ignore-scripts skips the postinstall that
 * applies it): then a producer batch of ~125,000 records crashes ingest and a record with thousands of headers holds
 * the main thread, a lost group coordinator stalls commits until that broker is back, and records behind an open
 * transaction go unseen by lag and health (ADR 0036). `read` is for tests.
 */
export function unpatchedKafkajsFiles(read: (file: string) => string = (f) => readFileSync(createRequire(import.meta.url).resolve(f), 'utf8')): string[] {
  return PATCHED_KAFKAJS_FILES.filter((f) => {
    try {
      return !read(f).includes('cdr-pipeline patch');
    } catch {
      return true;
    }
  });
}

/** One kafkajs log line, as the consumer's client and the publisher thread (publisherWorker.ts) pass it on. */
export interface KafkajsLogLine {
  readonly level: 'error' | 'warn' | 'debug';
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

/**
 * Where kafkajs's lines go: into pino, the same line within 30 s counted rather than written again (a dead broker makes
 * every client log each retry), the count written as one line when the 30 s end.
 */
export function kafkajsLogLines(kafkaLog: Logger): { note(line: KafkajsLogLine): void } {
  const lines = new RepeatedLines<KafkajsLogLine>(30_000, (l, repeated) => {
    const fields = repeated === undefined ? l.fields : { ...l.fields, repeated };
    const message = repeated === undefined ? l.message : `${l.message} (${repeated} more like this in the last 30 s)`;
    kafkaLog[l.level](fields, message);
  });
  return { note: (l) => lines.note(JSON.stringify([l.level, l.message, l.fields]), l) };
}

/**
 * What a record's encoded form holds beyond its key, value and headers (lengths, deltas, attributes: a few bytes, and
 * two varints per header), allowed for by the decompression cap: `CDR_MAX_RECORD_BYTES` counts key, value and headers,
 * and the consumer loop checks exactly that on what the cap lets through. Found from outside: records of 1,048,575 and
 * 1,048,576 bytes were cut while decompressing, as "1048585 bytes".
 */
export const RECORD_FRAMING_SLACK = 64 * 1024;

/** The decompression caps that follow from the configuration: a record (with its framing), and a batch of them. */
export function recordLimitsOf(k: Pick<KafkaConfig, 'maxRecordBytes'>): RecordLimits {
  return { maxRecordBytes: k.maxRecordBytes + RECORD_FRAMING_SLACK, maxBatchBytes: Math.max(32 * 1024 * 1024, 4 * k.maxRecordBytes) };
}

/**
 * kafkajs wiring: one Kafka instance per process, its log lines routed into pino (warn and above), and
 * the pipeline's topics created with their retention. The raw topic and the DLQ carry identifiers, so a record
 * stays on them no longer than CDR_RAW_RETENTION_HOURS (topicPolicy.ts).
 */
export function createKafka(brokers: readonly string[], clientId: string, log: Logger, recordLimits?: RecordLimits, security: KafkaClientSecurity = {}): Kafka {
  // Every codec, with decompression capped (codecs.ts); kafkajs alone reads gzip only.
  registerCodecs(recordLimits ?? DEFAULT_RECORD_LIMITS);
  const lines = kafkajsLogLines(log.child({ component: 'kafkajs' }));
  return new Kafka({
    clientId,
    brokers: [...brokers],
    ...(security.ssl ? { ssl: security.ssl } : {}),
    ...(security.sasl ? { sasl: security.sasl } : {}),
    logLevel: KafkaLogLevel.WARN,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5_000 },
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log as { message: string } & Record<string, unknown>;
      const fields = { broker: rest['broker'], groupId: rest['groupId'], error: rest['error'] };
      const level = entry.level <= KafkaLogLevel.ERROR ? 'error' : entry.level === KafkaLogLevel.WARN ? 'warn' : 'debug';
      lines.note({ level, message, fields });
    },
  });
}

export interface TopicPlan {
  readonly topic: string;
  readonly partitions: number;
  readonly retentionMs: number;
  /** Further topic configs the topic is created with (`segment.ms`, `message.timestamp.type`, …); not `retention.ms`. */
  readonly configs?: Readonly<Record<string, string>>;
  /**
   * The longest a record may stay on the topic (topics that carry identifiers: CDR_RAW_RETENTION_HOURS), which
   * checkTopicPolicy holds the topic to. Without it, the topic is held to what its own settings give (topicPolicy.ts).
   */
  readonly policyMs?: number;
}

/**
 * The pipeline's topics. `cdr.raw` and `cdr.dlq` carry identifiers in clear: their settings keep the real age of a
 * record within CDR_RAW_RETENTION_HOURS (topicPolicy.ts has the arithmetic), the DLQ no longer than the raw topic.
 * The others keep their retention, with one-day segments so that it is not stretched by a week-long segment.
 */
export function pipelineTopics(k: KafkaConfig): TopicPlan[] {
  const day = 24 * 3600 * 1000;
  const policyMs = k.rawRetentionHours * 3600 * 1000;
  const identifiers = identifierTopicConfigs(policyMs);
  const daySegments = { 'segment.ms': String(day) };
  return [
    { topic: k.topics.raw, partitions: k.partitions, retentionMs: identifiers.retentionMs, configs: identifiers.configs, policyMs },
    { topic: k.topics.pseudonymised, partitions: k.partitions, retentionMs: 7 * day, configs: daySegments },
    { topic: k.topics.dlq, partitions: 1, retentionMs: identifiers.retentionMs, configs: identifiers.configs, policyMs },
    { topic: k.topics.fraudAlerts, partitions: 1, retentionMs: 30 * day, configs: daySegments },
  ];
}

/**
 * Creates missing topics (idempotent) with every config entry of their plan. Existing topics are left as they are:
 * checkTopicPolicy (topicPolicy.ts) checks and corrects their settings.
 */
export async function ensureTopics(admin: Admin, plans: readonly TopicPlan[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = plans.filter((p) => !existing.has(p.topic));
  if (missing.length === 0) return [];
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((p) => ({
        topic: p.topic,
        numPartitions: p.partitions,
        replicationFactor: -1,
        configEntries: planConfigEntries(p),
      })),
    });
  } catch (err) {
    // kafkajs waits for the new topics' leaders but gives up at the first "does not host this topic-partition" from a
    // broker whose metadata has not caught up yet (seen on a local KRaft broker right after creation): the topics
    // exist; wait for their leaders here instead of failing start-up.
    if (!isNewTopicSettling(err)) throw err;
    await waitForLeaders(
      admin,
      missing.map((p) => p.topic),
      err,
    );
  }
  return missing.map((p) => p.topic);
}

const SETTLING_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_OR_FOLLOWER']);

function isNewTopicSettling(err: unknown): boolean {
  const type = typeof err === 'object' && err !== null && 'type' in err ? String(err.type) : '';
  return SETTLING_TYPES.has(type);
}

async function waitForLeaders(admin: Admin, topics: string[], first: unknown, maxWaitMs = 10_000): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  let last = first;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if (!isNewTopicSettling(err)) throw err;
      last = err;
    }
  }
  throw last;
}
