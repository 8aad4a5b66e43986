/**
 * Kafka: client wiring and topics, the shared consumer loop, the publisher thread, dead letters.
 */
export { createKafka, ensureTopics, pipelineTopics } from './kafkaClient.ts';
export type { TopicPlan } from './kafkaClient.ts';
export { ConsumerLoop, digestOf, insertPlan, loopHealth } from './consumerLoop.ts';
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
export { ThreadPublisher } from './publisher.ts';
export type { OutgoingMessage, PublisherOptions, TopicMessages } from './publisher.ts';
export { deadLetterMessage } from './deadLetters.ts';
export type { DeadLetter, DeadLetterSource, DeadLetterStage } from './deadLetters.ts';
export { classifyKafkaError } from './errors.ts';
