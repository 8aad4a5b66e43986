import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { PipelineError } from '../../../../services/core/index.ts';
import { deadLetterMessage, digestOf } from '../../../../services/platform/kafka/index.ts';
import { membershipErrorIn } from '../../../../services/platform/kafka/consumerLoop.ts';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';

// kafkajs's own error classes and protocol-error constructor (CommonJS; the last is not in its typings).
const requireCjs = createRequire(import.meta.url);
const { createErrorFromCode } = requireCjs('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error & { type: string } };
const { KafkaJSNonRetriableError } = requireCjs('kafkajs') as { KafkaJSNonRetriableError: new (e: Error, opts: { cause: Error }) => Error };

const message = (over: Partial<KafkaMessage> = {}): KafkaMessage =>
  ({
    key: Buffer.from('k'),
    value: Buffer.from([1, 2, 3]),
    offset: '42',
    timestamp: '0',
    attributes: 0,
    headers: { 'x-trace': 'abc' },
    size: 3,
    ...over,
  }) as unknown as KafkaMessage;

describe('consumer loop building blocks', () => {
  it('finds the "group moved on" error kafkajs wraps, so its runner can rejoin instead of crashing for good', () => {
    const unknownMember = createErrorFromCode(25);
    assert.equal(unknownMember.type, 'UNKNOWN_MEMBER_ID');
    // What consumer.commitOffsets throws once its retrier gives up on a non-retriable protocol error.
    const wrapped = new KafkaJSNonRetriableError(unknownMember, { cause: unknownMember });
    assert.equal((wrapped as unknown as { type?: string }).type, undefined, 'the wrapper alone does not say it (kafkajs would crash)');
    assert.equal(membershipErrorIn(wrapped), unknownMember);
    assert.equal(membershipErrorIn(new PipelineError('unexpected', 'broker call failed', { cause: wrapped })), unknownMember);
    assert.equal((membershipErrorIn(createErrorFromCode(27)) as { type?: string } | undefined)?.type, 'REBALANCE_IN_PROGRESS');
    assert.equal(membershipErrorIn(new KafkaJSNonRetriableError(createErrorFromCode(3), { cause: createErrorFromCode(3) })), undefined);
    assert.equal(membershipErrorIn(new Error('anything else')), undefined);
  });

  it('digests rows by their identity: same rows same digest, any change or order change another', () => {
    const rows = [{ id: 'a' }, { id: 'b' }];
    const d = digestOf(rows, (r) => r.id);
    assert.equal(
      d,
      digestOf([{ id: 'a' }, { id: 'b' }], (r) => r.id),
    );
    assert.notEqual(
      d,
      digestOf([{ id: 'b' }, { id: 'a' }], (r) => r.id),
    );
    assert.notEqual(
      d,
      digestOf([{ id: 'a' }], (r) => r.id),
    );
    // A separator between rows: ['ab'] and ['a','b'] must differ.
    assert.notEqual(
      digestOf([{ id: 'ab' }], (r) => r.id),
      d,
    );
    assert.match(d, /^[0-9a-f]{20}$/);
  });

  it('digests many rows exactly as one hash update per identity and per separator would (its calls are batched)', () => {
    for (const n of [0, 1, 511, 512, 513, 1024, 3001]) {
      const rows = Array.from({ length: n }, (_, i) => ({ id: i % 7 === 0 ? `zürich-ø-${i}` : `2026-12-01/${i.toString(16).padStart(32, '0')}` }));
      const h = createHash('sha1');
      for (const r of rows) h.update(r.id).update('\n');
      assert.equal(
        digestOf(rows, (r) => r.id),
        h.digest('hex').slice(0, 20),
        `${n} rows`,
      );
    }
  });

  it('builds a dead letter with the original bytes and Kafka Connect error headers, reason without values', () => {
    const d = deadLetterMessage(
      { topic: 'cdr.raw', partition: 3, connector: 'cdr-ingest' },
      { message: message(), error: new PipelineError('validation_failed', 'currency: must be an ISO 4217 code'), stage: 'TRANSFORMATION' },
    );
    assert.deepEqual(d.value, Buffer.from([1, 2, 3]));
    assert.deepEqual(d.key, Buffer.from('k'));
    const h = d.headers!;
    assert.equal(h['__connect.errors.topic'], 'cdr.raw');
    assert.equal(h['__connect.errors.partition'], '3');
    assert.equal(h['__connect.errors.offset'], '42');
    assert.equal(h['__connect.errors.connector.name'], 'cdr-ingest');
    assert.equal(h['__connect.errors.stage'], 'TRANSFORMATION');
    assert.equal(h['__connect.errors.exception.class.name'], 'PipelineError:validation_failed');
    assert.equal(h['__connect.errors.exception.message'], 'currency: must be an ISO 4217 code');
  });

  it('passes a null value (tombstone) on as null', () => {
    const d = deadLetterMessage(
      { topic: 't', partition: 0, connector: 'c' },
      {
        message: message({ value: null }),
        error: new PipelineError('decode_failed', 'null message value (a tombstone: a delete marker, not a record)'),
        stage: 'VALUE_CONVERTER',
      },
    );
    assert.equal(d.value, null);
  });
});
