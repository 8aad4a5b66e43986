/**
 * One error model for the pipeline. Every error says what the caller should do with the work that
 * failed: retry it (transient: broker or storage away), dead-letter it (the record itself is bad), or
 * stop (configuration or a broken invariant; continuing would lose or corrupt data).
 */
export type Disposition = 'retry' | 'dead-letter' | 'stop';

export type PipelineErrorCode =
  | 'config_invalid'
  | 'decode_failed'
  | 'unknown_schema_id'
  | 'validation_failed'
  | 'timestamp_out_of_range'
  | 'storage_unavailable'
  | 'broker_unavailable'
  | 'key_unavailable'
  | 'invariant_broken';

const DISPOSITION: Record<PipelineErrorCode, Disposition> = {
  config_invalid: 'stop',
  decode_failed: 'dead-letter',
  unknown_schema_id: 'dead-letter',
  validation_failed: 'dead-letter',
  timestamp_out_of_range: 'dead-letter',
  storage_unavailable: 'retry',
  broker_unavailable: 'retry',
  key_unavailable: 'retry',
  invariant_broken: 'stop',
};

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  readonly disposition: Disposition;
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.disposition = DISPOSITION[code];
  }
  get canRetry(): boolean {
    return this.disposition === 'retry';
  }
}

/** Classifies an unknown error from a client library. Unknown failures of I/O are retried; nothing is guessed to be the record's fault. */
export function classifyError(err: unknown, whileDoing: 'storage' | 'broker'): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PipelineError(whileDoing === 'storage' ? 'storage_unavailable' : 'broker_unavailable', `${whileDoing} call failed: ${message}`, { cause: err });
}
