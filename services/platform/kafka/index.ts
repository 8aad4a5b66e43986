/**
 * Kafka: client wiring and topics (and their retention policy), the shared consumer loop, the publisher thread, dead letters.
 */
export { createKafka, ensureTopics, pipelineTopics, PATCHED_KAFKAJS_FILES, recordLimitsOf, unpatchedKafkajsFiles } from './kafkaClient.ts';
export type { TopicPlan } from './kafkaClient.ts';
export {
  ASSUMED_RETENTION_CHECK_INTERVAL_MS,
  assessTopic,
  checkTopicPolicy,
  identifierTopicConfigs,
  maxRecordAgeMs,
  planConfigEntries,
  planPolicyMs,
  retentionWithinPolicy,
} from './topicPolicy.ts';
export type { PolicyRetention, RetentionSettings, TopicAssessment, TopicConfigs, TopicPolicyReport } from './topicPolicy.ts';
export { ConsumerLoop, insertPlan, loopHealth } from './consumerLoop.ts';
export { digestOf } from '../clickhouse/encodedRows.ts';
export type {
  AnyInsertPlan,
  BatchContext,
  BatchHandler,
  BatchRange,
  BatchResult,
  ConsumerLoopDeps,
  ConsumerLoopSettings,
  InsertPlan,
  LoopState,
  LoopStatus,
} from './consumerLoop.ts';
export { createPublisher, publisherInUse, ThreadPublisher, type Publisher } from './publisher.ts';
export { largestPackedMessage, messageCount, messagesOf, PackedStrings, unpackMessages } from './packedMessages.ts';
export type { PackedMessages } from './packedMessages.ts';
export { NativePublisher, nativeKafka } from './nativePublisher.ts';
export { PartitionedSender, splitByPartition } from './partitionedSend.ts';
export type { OutgoingMessage, PublisherOptions, TopicMessages } from './publisher.ts';
export { deadLetterMessage, DLQ_ORIGINAL_BYTES_HEADER, DLQ_STUB_HEADER, DLQ_STUB_IDENTIFIERS_EXPIRED, messageBytes, oversizeOf } from './deadLetters.ts';
export type { DeadLetter, DeadLetterSource, DeadLetterStage } from './deadLetters.ts';
export { classifyBatchFailure, classifyKafkaError, kafkaSettingsRefused } from './errors.ts';
export { compressionType, DEFAULT_RECORD_LIMITS, registerCodecs } from './codecs.ts';
export { OVERSIZE_HEADER, readVarint, RecordStream, writeZigzag, zigzag } from './recordStream.ts';
export type { RecordLimits } from './recordStream.ts';
export { decodeBlock, Lz4FormatError } from './lz4.ts';
export { KAFKA_FILE_CHECKS, kafkaClientSecurity } from './security.ts';
export { loopSettingsFor } from './loopSettings.ts';
export type { KafkaClientSecurity } from './security.ts';
export { MAX_MESSAGE_BYTES, PUBLISH_SLICE, SLICE_BYTES } from './limits.ts';
