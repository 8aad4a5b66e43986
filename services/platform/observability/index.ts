/**
 * Logging (pino, with central redaction) and metrics (prom-client, the brief's names).
 */
export { createLogger, createCommandLogger, commandLogLine, LOG_FILE_CHECKS, logDestination, logDestinationName, REDACTED_PATHS } from './logger.ts';
export { createMetrics } from './metrics.ts';
export { RepeatedLines } from './repeats.ts';
export type { IngestOutcome, PipelineMetrics } from './metrics.ts';
export type { Logger } from './logger.ts';
