/**
 * Configuration from the environment, by section.
 */
export { COMPRESSION_NAMES, loadConfig, loadConfigAndFiles, redactUrl, SECTION_NAMES, unknownCdrVariables, unknownCdrVariableWarnings } from './config.ts';
export { checkDirectory, directoryProblem, makeDirectories } from './directories.ts';
export type {
  ApiConfig,
  AuditConfig,
  BaseConfig,
  BillingConfig,
  ClickHouseConfig,
  CompressionName,
  ConfigOf,
  FileCheck,
  FraudConfigSection,
  IngestConfig,
  KafkaConfig,
  KafkaSecurityConfig,
  MasterKeyConfig,
  PipelineConfig,
  RetentionConfig,
  SectionName,
} from './config.ts';
