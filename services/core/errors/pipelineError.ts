/**
 * One error model for the pipeline and its API. Every error carries a code, and the code alone says what the
 * caller does with the work that failed:
 *
 * - `retry`: transient (a broker or ClickHouse away, a key not yet readable). The same work is tried again with
 *   backoff. Known transient codes are retried for as long as it takes (health reports it meanwhile); an
 *   `unexpected` error — one nobody classified — only a few times, then the service stops loudly.
 * - `dead-letter`: the input itself is at fault and will never succeed (a record that does not decode, validate,
 *   encode or insert on its own). The record goes to the DLQ alone; an HTTP request gets a 4xx.
 * - `stop`: continuing would lose or corrupt data (bad configuration, a wrong master key, a broken invariant,
 *   a SQL statement the store refuses). The service stops and says why; it never retries silently.
 *
 * HTTP statuses come from the same table, so an API error and a pipeline error never disagree.
 */
export type Disposition = 'retry' | 'dead-letter' | 'stop';

interface CodeRule {
  readonly disposition: Disposition;
  /** HTTP status when the error reaches the API. */
  readonly http: number;
  /** Attempts before a retryable error stops the service; undefined: retried until it succeeds or the service stops. */
  readonly maxAttempts?: number;
}

export const ERROR_CODES = {
  // Configuration and invariants: stop.
  config_invalid: { disposition: 'stop', http: 500 },
  invariant_broken: { disposition: 'stop', http: 500 },
  /** The master key does not open a stored key: a wrong key would make every new token unlinkable to the old ones. */
  key_invalid: { disposition: 'stop', http: 500 },
  /** The store refused a statement for a reason no retry changes (unknown table or column, syntax, schema). */
  storage_rejected: { disposition: 'stop', http: 500 },
  /** A capability the running code lacks (e.g. a compression codec); retrying cannot help. */
  unsupported: { disposition: 'stop', http: 500 },
  /** Work waited far longer than any bounded wait inside it allows: a wedge. The service stops so it is restarted. */
  stuck: { disposition: 'stop', http: 500 },

  // One record is at fault: dead-letter it alone.
  decode_failed: { disposition: 'dead-letter', http: 400 },
  unknown_schema_id: { disposition: 'dead-letter', http: 400 },
  validation_failed: { disposition: 'dead-letter', http: 400 },
  timestamp_out_of_range: { disposition: 'dead-letter', http: 400 },
  encode_failed: { disposition: 'dead-letter', http: 400 },
  /** The store refused one record's data (it fails alone, the rest of its batch does not). */
  record_rejected: { disposition: 'dead-letter', http: 400 },
  record_too_large: { disposition: 'dead-letter', http: 413 },

  // A request is at fault (the API's side of dead-letter: refuse it with a 4xx).
  bad_request: { disposition: 'dead-letter', http: 400 },
  unauthenticated: { disposition: 'dead-letter', http: 401 },
  forbidden: { disposition: 'dead-letter', http: 403 },
  not_found: { disposition: 'dead-letter', http: 404 },
  method_not_allowed: { disposition: 'dead-letter', http: 405 },
  conflict: { disposition: 'dead-letter', http: 409 },
  payload_too_large: { disposition: 'dead-letter', http: 413 },
  /** A path (a parameter) over the router's length limit. */
  uri_too_long: { disposition: 'dead-letter', http: 414 },
  unsupported_media_type: { disposition: 'dead-letter', http: 415 },
  rate_limited: { disposition: 'dead-letter', http: 429 },
  /** The client did not send its whole request in time (the API's request timeout). */
  request_timeout: { disposition: 'dead-letter', http: 408 },
  /** No answer form the request's Accept header allows. */
  not_acceptable: { disposition: 'dead-letter', http: 406 },
  /** The answer would exceed the most records one answer may hold (CDR_API_MAX_ANSWER_ROWS). */
  answer_too_large: { disposition: 'dead-letter', http: 422 },
  /** A money figure the API cannot give exactly (beyond ±2^53 − 1 micro-units): refused, never rounded. */
  amount_out_of_range: { disposition: 'dead-letter', http: 422 },

  // Transient: retry.
  storage_unavailable: { disposition: 'retry', http: 503 },
  broker_unavailable: { disposition: 'retry', http: 503 },
  key_unavailable: { disposition: 'retry', http: 503 },
  /** A month key was destroyed while a batch that uses it was in flight: the batch is prepared again, without it. */
  key_destroyed: { disposition: 'retry', http: 503 },
  unavailable: { disposition: 'retry', http: 503 },
  /** The schema registry (CDR_SCHEMA_REGISTRY_URL) could not say what a batch's schema id is: the batch waits. */
  schema_registry_unavailable: { disposition: 'retry', http: 503 },
  /** Nobody classified it: a few retries (it may be transient), then stop loudly rather than loop forever. */
  unexpected: { disposition: 'retry', http: 500, maxAttempts: 5 },
} as const satisfies Record<string, CodeRule>;

export type PipelineErrorCode = keyof typeof ERROR_CODES;

export function ruleOf(code: PipelineErrorCode): CodeRule {
  return ERROR_CODES[code];
}

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  readonly disposition: Disposition;
  /** For kafkajs's retrier, which reads `retriable`: a `stop` error must not be retried by the client library either. */
  readonly retriable: boolean;
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.disposition = ERROR_CODES[code].disposition;
    this.retriable = this.disposition === 'retry';
  }
  get canRetry(): boolean {
    return this.disposition === 'retry';
  }
  /** Attempts allowed before a retryable error stops the service (Infinity when retried until it succeeds). */
  get maxAttempts(): number {
    const rule: CodeRule = ERROR_CODES[this.code];
    return rule.maxAttempts ?? Number.POSITIVE_INFINITY;
  }
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
}

/** Network failures seen from Node's sockets, whoever the peer: transient by nature. */
const TRANSIENT_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Programming errors: retrying the same code on the same input gives the same result. */
const PROGRAMMING_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

/**
 * Classifies an error nobody wrapped yet. `whileDoing` names the I/O in progress, so a socket failure becomes
 * `storage_unavailable` or `broker_unavailable`. Library-specific rules (ClickHouse codes, kafkajs flags) live
 * with each client in platform/ and run before this; what is left is either a known Node failure or `unexpected`.
 */
export function classifyError(err: unknown, whileDoing: 'storage' | 'broker' | 'other' = 'other'): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  const sysCode = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  if (TRANSIENT_SYSTEM_CODES.has(sysCode) || /socket hang up|timeout|timed out/i.test(message)) {
    const code = whileDoing === 'storage' ? 'storage_unavailable' : whileDoing === 'broker' ? 'broker_unavailable' : 'unavailable';
    return new PipelineError(code, `${whileDoing} call failed: ${message}`, { cause: err });
  }
  if (err instanceof Error && PROGRAMMING_ERRORS.has(err.name)) {
    return new PipelineError('invariant_broken', `${err.name}: ${message}`, { cause: err });
  }
  return new PipelineError('unexpected', `${whileDoing === 'other' ? '' : `${whileDoing} call failed: `}${message}`, { cause: err });
}
