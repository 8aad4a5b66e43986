import type { KafkaMessage } from 'kafkajs';
import type { PipelineError } from '../../core/index.ts';
import type { OutgoingMessage } from './publisher.ts';
import { MAX_MESSAGE_BYTES } from './limits.ts';
import { OVERSIZE_HEADER } from './recordStream.ts';

/**
 * Dead letters: the original bytes with Kafka Connect's error headers (`__connect.errors.*`, the layout Kafka
 * Connect's DLQ uses, so existing tooling reads them) and a few of our own (`cdr-pipeline.*`). Only those headers:
 * a record's own headers are never copied (a producer may put an identifier in one). The reason names the rule,
 * never a value: values may be identifiers.
 *
 * A dead letter that would not fit the DLQ (the original is too large, or was replaced by a stand-in because it
 * decompressed past the caps) goes as a stub: no value, the key only if small, and the pointer to the original —
 * `__connect.errors.topic/partition/offset` — plus `cdr-pipeline.original.bytes`. The original stays readable
 * there for the topic's retention.
 *
 * A record whose identifier window has closed (the caller says so: `identifiersExpired`) goes as a stub too, without
 * its key, and `cdr-pipeline.stub` says why: identifiers past their retention are not copied anywhere.
 */
export type DeadLetterStage = 'VALUE_CONVERTER' | 'TRANSFORMATION' | 'SINK';

export interface DeadLetter {
  readonly message: KafkaMessage;
  readonly error: PipelineError;
  readonly stage: DeadLetterStage;
  /**
   * The caller decoded the record and its identifier window has already closed (`identifiersExpired(event_time,
   * now)`): the DLQ must not keep the original bytes or the key (both may hold identifiers). It gets a stub.
   */
  readonly identifiersExpired?: boolean;
}

export interface DeadLetterSource {
  readonly topic: string;
  readonly partition: number;
  /** Names the consumer in `__connect.errors.connector.name` (e.g. `cdr-ingest`). */
  readonly connector: string;
}

/** Headers of our own a dead letter carries (besides Kafka Connect's). */
export const DLQ_STUB_HEADER = 'cdr-pipeline.stub';
export const DLQ_ORIGINAL_BYTES_HEADER = 'cdr-pipeline.original.bytes';
/** `cdr-pipeline.stub` of a record whose identifier window had closed. */
export const DLQ_STUB_IDENTIFIERS_EXPIRED =
  'identifier retention expired: original and key not kept (read it at __connect.errors.topic/partition/offset while the topic holds it)';

const MAX_STUB_KEY = 1024;
/** Room kept for the error headers within MAX_MESSAGE_BYTES. */
const HEADER_ROOM = 8 * 1024;

/** Encoded size of a message as Kafka carries it (value, key and headers), for the size caps. */
export function messageBytes(m: KafkaMessage): number {
  let n = (m.value?.length ?? 0) + (m.key?.length ?? 0);
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    n += k.length;
    if (Buffer.isBuffer(v) || typeof v === 'string') n += v.length;
    else if (Array.isArray(v)) for (const x of v) n += x.length;
  }
  return n;
}

/** The original size of a stand-in (a record replaced while decompressing), or undefined for a real record. */
export function oversizeOf(m: KafkaMessage): number | undefined {
  const h = m.headers?.[OVERSIZE_HEADER];
  if (h === undefined) return undefined;
  const n = Number(Array.isArray(h) ? h[0] : h);
  return Number.isFinite(n) ? n : 0;
}

export function deadLetterMessage(src: DeadLetterSource, d: DeadLetter): OutgoingMessage {
  const headers: Record<string, string | Buffer> = {
    '__connect.errors.topic': src.topic,
    '__connect.errors.partition': String(src.partition),
    '__connect.errors.offset': d.message.offset,
    '__connect.errors.connector.name': src.connector,
    '__connect.errors.task.id': '0',
    '__connect.errors.stage': d.stage,
    '__connect.errors.class.name': `io.cdrpipeline.${src.connector}`,
    '__connect.errors.exception.class.name': `PipelineError:${d.error.code}`,
    '__connect.errors.exception.message': d.error.message.slice(0, 1000),
  };
  const standIn = oversizeOf(d.message);
  const originalBytes = standIn ?? (d.message.value?.length ?? 0) + (d.message.key?.length ?? 0);
  if (d.identifiersExpired === true) {
    headers[DLQ_STUB_HEADER] = DLQ_STUB_IDENTIFIERS_EXPIRED;
    headers[DLQ_ORIGINAL_BYTES_HEADER] = String(originalBytes);
    return { key: null, value: null, headers };
  }
  const fits = standIn === undefined && originalBytes + HEADER_ROOM <= MAX_MESSAGE_BYTES;
  if (fits) return { key: d.message.key, value: d.message.value, headers };
  headers[DLQ_STUB_HEADER] = 'original too large for the DLQ: read it at __connect.errors.topic/partition/offset';
  headers[DLQ_ORIGINAL_BYTES_HEADER] = String(originalBytes);
  const key = d.message.key && d.message.key.length <= MAX_STUB_KEY ? d.message.key : null;
  return { key, value: null, headers };
}
