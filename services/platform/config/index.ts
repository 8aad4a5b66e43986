/**
 * Configuration from the environment, by section.
 */
export { loadConfig, SECTION_NAMES } from './config.ts';
export type {
  ApiConfig,
  BaseConfig,
  ClickHouseConfig,
  ConfigOf,
  IngestConfig,
  KafkaConfig,
  MasterKeyConfig,
  PipelineConfig,
  RetentionConfig,
  SectionName,
} from './config.ts';
