/**
 * Configuration from the environment, by section.
 */
export { COMPRESSION_NAMES, loadConfig, SECTION_NAMES } from './config.ts';
export type {
  ApiConfig,
  BaseConfig,
  ClickHouseConfig,
  CompressionName,
  ConfigOf,
  IngestConfig,
  KafkaConfig,
  MasterKeyConfig,
  PipelineConfig,
  RetentionConfig,
  SectionName,
} from './config.ts';
