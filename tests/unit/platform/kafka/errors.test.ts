import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { classifyBatchFailure, classifyKafkaError, kafkaSettingsRefused } from '../../../../services/platform/kafka/index.ts';
import { PipelineError } from '../../../../services/core/index.ts';

// kafkajs is CommonJS: its error classes come off the default export.
const {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNotImplemented,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
} = kafkajs;

/** kafkajs protocol errors as the library builds them (type, retriable) from a broker's error code. */
const protocolError = (type: string, retriable: boolean): Error => new KafkaJSProtocolError(Object.assign(new Error(type), { type, code: 1, retriable }));
/** How kafkajs's retrier wraps an error it will not retry: `new KafkaJSNonRetriableError(e, { cause: e })`. */
const NonRetriable = KafkaJSNonRetriableError as unknown as new (e: Error, opts: { cause: Error }) => Error;

describe('kafkajs errors in the error model', () => {
  it('treats connection loss and exhausted retries as transient', () => {
    assert.equal(classifyKafkaError(new KafkaJSConnectionError('Connection error: ECONNREFUSED')).code, 'broker_unavailable');
    assert.equal(classifyKafkaError(new KafkaJSNumberOfRetriesExceeded(new Error('x'), { retryCount: 5, retryTime: 100 })).code, 'broker_unavailable');
    assert.equal(classifyKafkaError(protocolError('LEADER_NOT_AVAILABLE', true)).code, 'broker_unavailable');
  });

  it('a batch failure from kafkajs (the loop’s offset commit) is sorted as Kafka’s: a broker away is waited out, not five attempts', () => {
    // What commitOffsets threw while the broker was away (found from outside: sorted by the generic rules it was
    // `unexpected`, and a ~2-minute outage stopped `cdr start`).
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:39392');
    for (const err of [refused, new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 8, retryTime: 5000 })]) {
      const e = classifyBatchFailure(err);
      assert.equal(e.code, 'broker_unavailable', err.name);
      assert.equal(e.disposition, 'retry');
      assert.equal(e.maxAttempts, Number.POSITIVE_INFINITY);
    }
    // Anything else keeps the generic rules: a programming error stops, an unknown one gets its few attempts.
    assert.equal(classifyBatchFailure(new TypeError('x is undefined')).code, 'invariant_broken');
    assert.equal(classifyBatchFailure(new Error('something nobody classified')).code, 'unexpected');
    const own = new PipelineError('storage_unavailable', 'engine away');
    assert.equal(classifyBatchFailure(own), own);
  });

  it('a message the broker refuses for its size is about the record, not the broker', () => {
    assert.equal(classifyKafkaError(protocolError('MESSAGE_TOO_LARGE', false)).code, 'record_too_large');
    const inner = protocolError('RECORD_LIST_TOO_LARGE', false);
    assert.equal(classifyKafkaError(new NonRetriable(inner, { cause: inner })).code, 'record_too_large');
  });

  it('a codec kafkajs lacks stops the consumer instead of looping', () => {
    const e = classifyKafkaError(new (KafkaJSNotImplemented as unknown as new (message: string) => Error)('Snappy compression not implemented'));
    assert.equal(e.code, 'unsupported');
    assert.equal(e.disposition, 'stop');
  });

  it('authorisation failures are configuration', () => {
    assert.equal(classifyKafkaError(protocolError('TOPIC_AUTHORIZATION_FAILED', false)).code, 'config_invalid');
  });
});

describe("kafkaSettingsRefused: start-up failures that are the client's own settings", () => {
  it('a broker certificate this client does not trust names the TLS variables, however kafkajs wrapped it', () => {
    const tls = new KafkaJSConnectionError('Connection error: self-signed certificate in certificate chain', {
      broker: 'b:1',
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    for (const err of [tls, new KafkaJSNumberOfRetriesExceeded(tls, { retryCount: 5, retryTime: 100 }), new NonRetriable(tls, { cause: tls })]) {
      const why = kafkaSettingsRefused(err);
      assert.ok(why?.includes('KAFKA_SSL_CA_FILE') && why.includes('self-signed certificate'), String(why));
    }
  });

  it("a refused login names the SASL variables and echoes nothing but the broker's words", () => {
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    const sasl = new SaslError('SASL PLAIN authentication failed: Authentication failed: Invalid username or password');
    const why = kafkaSettingsRefused(new NonRetriable(sasl, { cause: sasl }));
    assert.match(String(why), /refuse the login .*KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD \/ KAFKA_SASL_PASSWORD_FILE/);
  });

  it('a client certificate the brokers refuse, and TLS to a plaintext listener, name their variables', () => {
    const refused = new KafkaJSConnectionError('Connection error: tlsv1 alert unknown ca', { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' });
    assert.match(String(kafkaSettingsRefused(refused)), /KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE/);
    const plain = new KafkaJSConnectionError('Connection error: wrong version number', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' });
    assert.match(String(kafkaSettingsRefused(plain)), /KAFKA_SSL and KAFKA_BROKERS/);
  });

  it("a certificate out of its dates, or a SASL exchange cut by the connection, is not read as the client's settings", () => {
    for (const code of ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])
      assert.equal(kafkaSettingsRefused(new KafkaJSConnectionError('Connection error: certificate has expired', { code })), undefined, code);
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    assert.equal(kafkaSettingsRefused(new SaslError('SASL PLAIN authentication failed: Connection closed by the server')), undefined);
    assert.equal(kafkaSettingsRefused(new SaslError('SASL SCRAM SHA256 authentication failed: Request timed out')), undefined);
  });

  it('a broker away, or any other error, is not a settings problem', () => {
    assert.equal(kafkaSettingsRefused(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9', { code: 'ECONNREFUSED' })), undefined);
    assert.equal(kafkaSettingsRefused(new Error('x')), undefined);
    assert.equal(kafkaSettingsRefused('text'), undefined);
  });
});
