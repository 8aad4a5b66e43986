import type { KafkaMessage } from 'kafkajs';
import type { PipelineError } from '../../core/index.ts';
import type { OutgoingMessage } from './publisher.ts';

/**
 * Dead letters: the original bytes with Kafka Connect's error headers (`__connect.errors.*`, the layout Kafka
 * Connect's DLQ uses, so existing tooling reads them). The reason names the rule, never a value: values may be
 * identifiers.
 */
export type DeadLetterStage = 'VALUE_CONVERTER' | 'TRANSFORMATION' | 'SINK';

export interface DeadLetter {
  readonly message: KafkaMessage;
  readonly error: PipelineError;
  readonly stage: DeadLetterStage;
}

export interface DeadLetterSource {
  readonly topic: string;
  readonly partition: number;
  /** Names the consumer in `__connect.errors.connector.name` (e.g. `cdr-ingest`). */
  readonly connector: string;
}

export function deadLetterMessage(src: DeadLetterSource, d: DeadLetter): OutgoingMessage {
  const original = d.message.headers ?? {};
  const headers: Record<string, string | Buffer> = {};
  for (const [k, v] of Object.entries(original)) if (Buffer.isBuffer(v) || typeof v === 'string') headers[k] = v;
  Object.assign(headers, {
    '__connect.errors.topic': src.topic,
    '__connect.errors.partition': String(src.partition),
    '__connect.errors.offset': d.message.offset,
    '__connect.errors.connector.name': src.connector,
    '__connect.errors.task.id': '0',
    '__connect.errors.stage': d.stage,
    '__connect.errors.class.name': `io.cdrpipeline.${src.connector}`,
    '__connect.errors.exception.class.name': `PipelineError:${d.error.code}`,
    '__connect.errors.exception.message': d.error.message,
  });
  return { key: d.message.key, value: d.message.value, headers };
}
