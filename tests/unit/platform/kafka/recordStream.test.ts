import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordLimitsOf } from '../../../../services/platform/kafka/kafkaClient.ts';
import { RecordStream, writeZigzag } from '../../../../services/platform/kafka/recordStream.ts';

/** One record in Kafka's v2 format, as a codec hands it on: its length, then attributes, deltas, key, value, headers. */
function encodedRecord(key: Buffer, value: Buffer, headers: [string, Buffer][] = []): Buffer {
  const body = Buffer.concat([
    Buffer.from([0]),
    writeZigzag(0),
    writeZigzag(0),
    writeZigzag(key.length),
    key,
    writeZigzag(value.length),
    value,
    writeZigzag(headers.length),
    ...headers.flatMap(([k, v]) => [writeZigzag(Buffer.byteLength(k)), Buffer.from(k), writeZigzag(v.length), v]),
  ]);
  return Buffer.concat([writeZigzag(body.length), body]);
}

describe('the decompression cap on one record', () => {
  const limits = recordLimitsOf({ maxRecordBytes: 1024 * 1024 });
  const passes = (record: Buffer): boolean => {
    const s = new RecordStream(limits);
    s.push(record);
    s.finish();
    return s.standIns === 0;
  };

  it('lets through a record whose key, value and headers are at the limit, framing and many headers included', () => {
    // Found from outside (2026-12-06): records of 1,048,575 and 1,048,576 bytes (key + value + headers, what
    // CDR_MAX_RECORD_BYTES counts) were cut while decompressing, as "1048585 bytes": their framing was counted too.
    const key = Buffer.from('cdr-1');
    const headers: [string, Buffer][] = Array.from({ length: 300 }, (_, i) => [`h${i}`, Buffer.from('v')]);
    const headerBytes = headers.reduce((n, [k, v]) => n + Buffer.byteLength(k) + v.length, 0);
    assert.equal(passes(encodedRecord(key, Buffer.alloc(1024 * 1024 - key.length))), true);
    assert.equal(passes(encodedRecord(key, Buffer.alloc(1024 * 1024 - key.length - headerBytes), headers)), true);
  });

  it('cuts one far past it (the consumer loop judges the rest exactly, on key, value and headers)', () => {
    assert.equal(passes(encodedRecord(Buffer.from('k'), Buffer.alloc(1024 * 1024 + 64 * 1024 + 1))), false);
  });
});
