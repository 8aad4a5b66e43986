/**
 * Configuration from the environment, by section.
 */
export { COMPRESSION_NAMES, loadConfig, redactUrl, SECTION_NAMES } from './config.ts';
export type {
  ApiConfig,
  AuditConfig,
  BaseConfig,
  BillingConfig,
  ClickHouseConfig,
  CompressionName,
  ConfigOf,
  FraudConfigSection,
  IngestConfig,
  KafkaConfig,
  KafkaSecurityConfig,
  MasterKeyConfig,
  PipelineConfig,
  RetentionConfig,
  SectionName,
} from './config.ts';
