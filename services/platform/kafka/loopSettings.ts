import type { KafkaConfig } from '../config/config.ts';
import type { ConsumerLoopSettings } from './consumerLoop.ts';
import { recordLimitsOf } from './kafkaClient.ts';
import { kafkaClientSecurity } from './security.ts';

/**
 * A consumer's loop settings from the pipeline's Kafka configuration: what every consumer shares (the DLQ, codec,
 * security, record limit, stall delay, partitions handled at once) comes from `kafka`; what is its own (group, topic,
 * connector name, batch size, session timeout) from `own`.
 */
export function loopSettingsFor(
  kafka: KafkaConfig,
  own: Pick<ConsumerLoopSettings, 'groupId' | 'topic' | 'connector' | 'maxBatchRecords'> &
    Partial<Pick<ConsumerLoopSettings, 'maxBytesPerPartition' | 'sessionTimeoutMs' | 'minBytes' | 'maxWaitTimeInMs'>>,
): ConsumerLoopSettings {
  return {
    maxBytesPerPartition: 4 * 1024 * 1024,
    sessionTimeoutMs: 30_000,
    ...own,
    partitionsConcurrently: Math.min(4, kafka.partitions),
    dlqTopic: kafka.topics.dlq,
    compression: kafka.compression,
    publisher: kafka.publisher,
    security: kafkaClientSecurity(kafka.security),
    maxRecordBytes: kafka.maxRecordBytes,
    maxBatchBytes: recordLimitsOf(kafka).maxBatchBytes,
    stallMs: kafka.stallMs,
    openTransactionAlarmMs: kafka.openTransactionAlarmMs,
  };
}
