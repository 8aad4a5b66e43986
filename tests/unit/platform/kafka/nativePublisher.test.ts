/**
 * The native publisher's pure parts: how the pipeline's TLS and SASL settings become librdkafka properties, and how
 * librdkafka's error codes land in the error model. (The publishing itself is proven against the real broker in
 * tests/integration/platform/publisher.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyNativeError, librdkafkaSecurity } from '../../../../services/platform/kafka/nativePublisher.ts';

function rdError(code: number, message = 'x'): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

describe('librdkafkaSecurity', () => {
  it('plain TCP without authentication', () => {
    assert.deepEqual(librdkafkaSecurity({}), { 'security.protocol': 'plaintext' });
  });

  it('TLS with a private CA, a client certificate, and verification off when asked', () => {
    assert.deepEqual(librdkafkaSecurity({ ssl: { ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: false } }), {
      'security.protocol': 'ssl',
      'ssl.ca.pem': 'CA',
      'ssl.certificate.pem': 'CERT',
      'ssl.key.pem': 'KEY',
      'enable.ssl.certificate.verification': false,
      'ssl.endpoint.identification.algorithm': 'none',
    });
    // Verification stays on (librdkafka's default) unless turned off.
    assert.deepEqual(librdkafkaSecurity({ ssl: { ca: 'CA', rejectUnauthorized: true } }), { 'security.protocol': 'ssl', 'ssl.ca.pem': 'CA' });
    assert.deepEqual(librdkafkaSecurity({ ssl: true }), { 'security.protocol': 'ssl' });
  });

  it('SASL mechanisms in librdkafka spelling, over TLS or plain TCP', () => {
    assert.deepEqual(librdkafkaSecurity({ sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } }), {
      'security.protocol': 'sasl_plaintext',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'u',
      'sasl.password': 'p',
    });
    const both = librdkafkaSecurity({ ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'p' } });
    assert.equal(both['security.protocol'], 'sasl_ssl');
    assert.equal(both['sasl.mechanisms'], 'PLAIN');
  });
});

describe('classifyNativeError', () => {
  it('a record the broker refuses is the record’s problem (dead letter)', () => {
    for (const code of [2, 10, 18, 87]) {
      const e = classifyNativeError(rdError(code, 'Broker: Message size too large'));
      assert.equal(e.code, 'record_too_large', String(code));
      assert.equal(e.disposition, 'dead-letter');
    }
  });

  it('authentication and authorisation are configuration (stop)', () => {
    for (const code of [-169, -181, 29, 31, 58]) assert.equal(classifyNativeError(rdError(code)).code, 'config_invalid', String(code));
  });

  it('timeouts, transport and fenced producers are the broker being away (retry)', () => {
    for (const code of [-192, -195, -187, -150, 3, 6]) {
      const e = classifyNativeError(rdError(code, 'Local: Message timed out\nsecond line'));
      assert.equal(e.code, 'broker_unavailable', String(code));
      assert.equal(e.disposition, 'retry');
      assert.equal(e.message, 'Kafka: Local: Message timed out');
    }
  });
});
