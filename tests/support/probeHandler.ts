/**
 * A small BatchHandler for testing the consumer loop itself, independent of ingest: each message is JSON
 * `{"id": "...", "poison"?: "decode" | "store"}`. Good records become one row of `loop_probe` and one message on
 * the output topic; "decode" poison is dead-lettered by the handler, "store" poison makes a row the engine
 * refuses (the loop must find it by splitting the batch and dead-letter it alone).
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import { PipelineError } from '../../services/core/index.ts';
import type { Storage } from '../../services/platform/clickhouse/index.ts';
import type { Logger } from '../../services/platform/observability/index.ts';
import { openRuntime, requireStorage, type PipelineRuntime } from '../../services/platform/runtime/index.ts';
import type { TestSetup } from './testEnv.ts';
import {
  createKafka,
  ensureTopics,
  pipelineTopics,
  insertPlan,
  type BatchContext,
  type BatchHandler,
  type BatchResult,
  type DeadLetter,
  type OutgoingMessage,
} from '../../services/platform/kafka/index.ts';

export interface ProbeRow {
  id: string;
  partition: number;
  offset: string;
  /** A number; the "store" poison puts text here, which the engine refuses. */
  n: number | string;
}

export interface ProbeMessage {
  id: string;
  poison?: 'decode' | 'store';
}

export const PROBE_TABLE = 'loop_probe';

export async function createProbeTable(storage: Storage): Promise<void> {
  await storage.command(
    `CREATE TABLE IF NOT EXISTS ${storage.table(PROBE_TABLE)} (id String, partition UInt32, offset UInt64, n UInt32)
     ENGINE = MergeTree ORDER BY (partition, offset) SETTINGS non_replicated_deduplication_window = 10000`,
  );
}

/**
 * What a consumer-loop test needs before its members start: a runtime without Kafka (the loops bring their own), the
 * probe table, the pipeline's topics plus the probe's output topic, and a client for producing and reading.
 */
export async function openProbeEnvironment(setup: TestSetup, clientId: string, log: Logger): Promise<{ rt: PipelineRuntime; kafka: Kafka; output: string }> {
  const output = `${setup.config.kafka.topics.raw}.probe-out`;
  const rt = await openRuntime(setup.config, { needKafka: false, log });
  await createProbeTable(requireStorage(rt).storage);
  const kafka = createKafka(setup.config.kafka.brokers!, clientId, log);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [...pipelineTopics(setup.config.kafka), { topic: output, partitions: 1, retentionMs: 3_600_000 }]);
  await admin.disconnect();
  return { rt, kafka, output };
}

export function probeValue(m: ProbeMessage): Buffer {
  return m.poison === 'decode' ? Buffer.from(`not json ${m.id}`) : Buffer.from(JSON.stringify(m));
}

export class ProbeHandler implements BatchHandler<{ opened: number }> {
  readonly counts = { stored: 0, dlq: 0, rejected: 0, opened: 0 };

  constructor(private readonly outputTopic: string) {}

  async openPartition(): Promise<{ opened: number }> {
    this.counts.opened++;
    return { opened: Date.now() };
  }

  onRejected(): void {
    this.counts.rejected++;
  }

  async prepare(messages: readonly KafkaMessage[], ctx: BatchContext<{ opened: number }>): Promise<BatchResult> {
    const rows: ProbeRow[] = [];
    const dead: DeadLetter[] = [];
    const out: OutgoingMessage[] = [];
    for (const message of messages) {
      let m: ProbeMessage;
      try {
        m = JSON.parse(message.value?.toString() ?? '') as ProbeMessage;
      } catch (cause) {
        dead.push({ message, error: new PipelineError('decode_failed', 'not JSON', { cause }), stage: 'VALUE_CONVERTER' });
        continue;
      }
      rows.push({ id: m.id, partition: ctx.partition, offset: message.offset, n: m.poison === 'store' ? 'not a number' : 1 });
      out.push({ key: m.id, value: Buffer.from(m.id) });
    }
    return {
      deadLetters: dead,
      publish: [{ topic: this.outputTopic, messages: out }],
      writes: [insertPlan({ table: PROBE_TABLE, label: 'probe', rows, identity: (r) => `${r.id}|${r.offset}` })],
      onDurable: () => {
        this.counts.stored += rows.length;
        this.counts.dlq += dead.length;
      },
    };
  }
}
