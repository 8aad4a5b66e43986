import { PipelineError, classifyError } from '../../core/index.ts';

/**
 * kafkajs failures sorted into the pipeline's error model. kafkajs marks what it considers transient with
 * `retriable`; a few non-retriable failures are really about one record (too large) or about our own code or
 * configuration (a codec it does not implement, authorisation).
 */
const RECORD_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE']);
const CONFIG_TYPES = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_CONFIG',
]);
const TRANSIENT_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSLockTimeout',
  'KafkaJSStaleTopicMetadataAssignment',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSTopicMetadataNotLoaded',
]);

function originalCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 10 && typeof e === 'object' && e !== null && 'cause' in e && (e as { cause?: unknown }).cause; i++) {
    const next = e.cause;
    if (!(next instanceof Error)) break;
    e = next;
  }
  return e;
}

/**
 * Node's codes for a broker certificate this client does not trust (an unknown CA, a name that does not match). Not
 * the dates (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID): this host's clock or a certificate being rotated on the broker, which
 * no variable here fixes and which may pass (found in review).
 */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'CERT_CHAIN_TOO_LONG',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
/** The brokers refusing this client's certificate (or asking for one it did not send). */
const CLIENT_CERTIFICATE_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);

/**
 * Why the brokers could not be used at start-up, when the cause is the client's own settings, naming the variables to
 * fix (found from outside: a CA file that does not sign the brokers' certificates was "no Kafka broker answers", exit
 * 1, and a refused login named no variable); undefined for anything else.
 */
export function kafkaSettingsRefused(err: unknown): string | undefined {
  const chain: unknown[] = [];
  for (let e: unknown = err; chain.length < 10 && e instanceof Error; e = (e as { cause?: unknown }).cause) chain.push(e);
  const codeOf = (e: unknown): string => (typeof e === 'object' && e !== null && 'code' in e ? String((e as { code?: unknown }).code) : '');
  const firstLine = (e: Error): string => e.message.split('\n')[0]!;
  const certificate = chain.find((e) => UNTRUSTED_CERTIFICATE.has(codeOf(e)));
  if (certificate instanceof Error)
    return `the brokers' TLS certificate is not trusted (${firstLine(certificate)}): check KAFKA_SSL_CA_FILE (the CA that signed the brokers' certificates), KAFKA_SSL_REJECT_UNAUTHORIZED, and that KAFKA_BROKERS names the brokers as their certificates do`;
  const client = chain.find((e) => CLIENT_CERTIFICATE_REFUSED.has(codeOf(e)));
  if (client instanceof Error) return `the brokers refuse this client's certificate (${firstLine(client)}): check KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE`;
  const plain = chain.find((e) => codeOf(e) === 'ERR_SSL_WRONG_VERSION_NUMBER');
  if (plain instanceof Error) return `TLS to a listener that does not speak it (${firstLine(plain)}): check KAFKA_SSL and KAFKA_BROKERS`;
  // kafkajs raises its SASL error for a connection closed or timed out during the exchange too: a broker restarting
  // then is not a wrong password (found in review).
  const sasl = chain.find((e) => e instanceof Error && e.name === 'KafkaJSSASLAuthenticationError');
  if (sasl instanceof Error && !/connection closed|timed? ?out/i.test(sasl.message))
    return `the brokers refuse the login (${firstLine(sasl)}): check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE`;
  return undefined;
}

export function classifyKafkaError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  const root = originalCause(err);
  const name = err instanceof Error ? err.name : '';
  const rootName = root instanceof Error ? root.name : '';
  const type = typeof root === 'object' && root !== null && 'type' in root ? String(root.type) : '';
  const message = `Kafka: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`;
  if (name === 'KafkaJSNotImplemented' || rootName === 'KafkaJSNotImplemented') return new PipelineError('unsupported', message, { cause: err });
  if (RECORD_TYPES.has(type)) return new PipelineError('record_too_large', message, { cause: err });
  if (CONFIG_TYPES.has(type) || rootName === 'KafkaJSSASLAuthenticationError') return new PipelineError('config_invalid', message, { cause: err });
  // An idempotent producer out of step with the broker: the publisher replaces it; sending again is the cure.
  if (['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH'].includes(type))
    return new PipelineError('broker_unavailable', message, { cause: err });
  const retriable = (root as { retriable?: unknown } | null)?.retriable === true || (err as { retriable?: unknown } | null)?.retriable === true;
  if (retriable || TRANSIENT_NAMES.has(name) || TRANSIENT_NAMES.has(rootName)) return new PipelineError('broker_unavailable', message, { cause: err });
  return classifyError(err, 'broker');
}

/** Whether kafkajs raised it (its errors are all named KafkaJS…), or wrapped it. */
function fromKafkaJs(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 10 && e instanceof Error; i++) {
    if (e.name.startsWith('KafkaJS')) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A batch's failure sorted into the error model. The loop's own steps call kafkajs directly (the offset commit), so a
 * kafkajs error is sorted as Kafka's: a broker away is `broker_unavailable`, waited out however long it lasts. Sorted
 * by the generic rules it was `unexpected` (five attempts): a broker away for ~2 minutes stopped `cdr start` (found from
 * outside, 2026-12-04: billing and ingest gave up on their offset commits).
 */
export function classifyBatchFailure(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  return fromKafkaJs(err) ? classifyKafkaError(err) : classifyError(err);
}
