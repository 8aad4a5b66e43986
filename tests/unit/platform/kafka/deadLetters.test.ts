/**
 * Dead letters of records whose identifier window has closed keep neither the original bytes nor the key: a stub
 * with the pointer and a `cdr-pipeline.stub` that says why (services/platform/kafka/deadLetters.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { PipelineError } from '../../../../services/core/index.ts';
import { deadLetterMessage, DLQ_ORIGINAL_BYTES_HEADER, DLQ_STUB_HEADER, DLQ_STUB_IDENTIFIERS_EXPIRED } from '../../../../services/platform/kafka/index.ts';

const message = (over: Partial<KafkaMessage> = {}): KafkaMessage =>
  ({
    key: Buffer.from('+60123456789'),
    value: Buffer.from('sender=+60123456789'),
    offset: '7',
    timestamp: '0',
    attributes: 0,
    headers: {},
    size: 19,
    ...over,
  }) as unknown as KafkaMessage;

const src = { topic: 'cdr.raw', partition: 1, connector: 'cdr-ingest' };
const error = new PipelineError('validation_failed', 'currency: must be an ISO 4217 code');

describe('dead letters past the identifier window', () => {
  it('a record whose identifiers expired goes as a stub: no value, no key, the pointer and why', () => {
    const d = deadLetterMessage(src, { message: message(), error, stage: 'TRANSFORMATION', identifiersExpired: true });
    assert.equal(d.value, null);
    assert.equal(d.key, null);
    const h = d.headers!;
    assert.equal(h[DLQ_STUB_HEADER], DLQ_STUB_IDENTIFIERS_EXPIRED);
    assert.match(String(h[DLQ_STUB_HEADER]), /identifier retention expired/);
    assert.equal(h[DLQ_ORIGINAL_BYTES_HEADER], String(19 + 12));
    assert.equal(h['__connect.errors.topic'], 'cdr.raw');
    assert.equal(h['__connect.errors.partition'], '1');
    assert.equal(h['__connect.errors.offset'], '7');
    assert.equal(h['__connect.errors.exception.class.name'], 'PipelineError:validation_failed');
    assert.ok(!JSON.stringify({ ...h }).includes('60123456789'));
  });

  it('with the flag false or absent, the original bytes and key go as before', () => {
    for (const identifiersExpired of [false, undefined]) {
      const d = deadLetterMessage(src, {
        message: message(),
        error,
        stage: 'TRANSFORMATION',
        ...(identifiersExpired === undefined ? {} : { identifiersExpired }),
      });
      assert.deepEqual(d.value, Buffer.from('sender=+60123456789'));
      assert.deepEqual(d.key, Buffer.from('+60123456789'));
      assert.equal(d.headers![DLQ_STUB_HEADER], undefined);
    }
  });

  it('a stand-in for an oversize record whose identifiers expired says why it has no key either', () => {
    const d = deadLetterMessage(src, {
      message: message({ value: null, headers: { 'cdr-pipeline.oversize': '5000000' } }),
      error,
      stage: 'VALUE_CONVERTER',
      identifiersExpired: true,
    });
    assert.equal(d.key, null);
    assert.equal(d.headers![DLQ_STUB_HEADER], DLQ_STUB_IDENTIFIERS_EXPIRED);
    assert.equal(d.headers![DLQ_ORIGINAL_BYTES_HEADER], '5000000');
  });
});
