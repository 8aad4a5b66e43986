/**
 * kafkajs 2.2.4 as patched by patches/kafkajs+2.2.4.patch (applied by `npm install`'s postinstall): its fetch decoder
 * must read what any producer may send. Found from outside with librdkafka: one batch of 150,000 records overflowed
 * the call stack (`records.push(...batch.records)`: ingest crashed on every start), and one record with 15,000
 * headers took ~30 s to decode on the main thread (the headers object copied per header), so the member lost its
 * session and the partition was replayed for ever. The batches here are built with kafkajs's own encoder, as a
 * producer's bytes, and read back with the decoder the consumer uses.
 */
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PATCHED_KAFKAJS_FILES, unpatchedKafkajsFiles } from '../../../../services/platform/kafka/index.ts';

const require = createRequire(import.meta.url);
type Headers = Record<string, Buffer | Buffer[]>;
interface Encoded {
  buffer: Buffer;
}
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (batch: {
    records: Encoded[];
    lastOffsetDelta: number;
    firstOffset?: unknown;
    firstTimestamp?: unknown;
    maxTimestamp?: unknown;
  }) => Promise<Encoded>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: {
  offsetDelta: number;
  timestampDelta?: unknown;
  key: Buffer;
  value: Buffer;
  headers?: Headers;
}) => Encoded;
const Long = require('kafkajs/src/utils/long') as { fromString(s: string): unknown; fromValue(v: unknown): unknown };
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages') as (
  decoder: unknown,
) => Promise<{ offset: string; timestamp: string; key: Buffer; value: Buffer; headers: Record<string, unknown> }[]>;

/** A fetch response's message set: its size, then the batch. */
async function fetched(
  records: Encoded[],
  { logAppendTime = false, ...batchFields }: { firstOffset?: unknown; firstTimestamp?: unknown; maxTimestamp?: unknown; logAppendTime?: boolean } = {},
): Promise<unknown> {
  const batch = (await RecordBatch({ records, lastOffsetDelta: records.length - 1, ...batchFields })).buffer;
  // kafkajs's encoder always writes create time; the attributes' timestamp-type bit (base offset 8, length 4, leader
  // epoch 4, magic 1, crc 4, then attributes int16: its low byte at 22). The decoder does not check the crc.
  if (logAppendTime) batch[22]! |= 0x08;
  const size = Buffer.alloc(4);
  size.writeInt32BE(batch.length);
  return new Decoder(Buffer.concat([size, batch]));
}

describe('kafkajs fetch decoding, patched', () => {
  it('reads one batch of 150,000 records (a spread of them overflowed the call stack)', async () => {
    const n = 150_000;
    const records: Encoded[] = [];
    for (let i = 0; i < n; i++) records.push(Record({ offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) }));
    const decoded = await decodeMessages(await fetched(records));
    assert.equal(decoded.length, n);
    assert.deepEqual([decoded[0]!.offset, decoded[n - 1]!.offset, decoded[n - 1]!.value.toString()], ['0', String(n - 1), `v${n - 1}`]);
  });

  it('reads a record with 20,000 headers at once (it was quadratic: ~90 s), and headers as kafkajs gives them', { timeout: 20_000 }, async () => {
    const headers: Headers = {};
    for (let i = 0; i < 20_000; i++) headers[`h${i}`] = Buffer.alloc(0);
    // A name repeated (an array, in order), and a header named __proto__ (an own key, not a prototype).
    headers['twice'] = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')];
    const record = Record({ offsetDelta: 0, key: Buffer.from('k'), value: Buffer.from('v'), headers });
    const proto = Record({ offsetDelta: 1, key: Buffer.from('k'), value: Buffer.from('v'), headers: JSON.parse('{"__proto__": "x"}') as Headers });
    const [big, odd] = await decodeMessages(await fetched([record, proto]));
    assert.equal(Object.keys(big!.headers).length, 20_001);
    assert.deepEqual(
      (big!.headers['twice'] as Buffer[]).map((b) => b.toString()),
      ['a', 'b', 'c'],
    );
    assert.ok(Object.hasOwn(odd!.headers, '__proto__'));
    assert.equal(String(odd!.headers['__proto__']), 'x');
    assert.equal(Object.getPrototypeOf(odd!.headers), Object.prototype);
  });
});

describe('kafkajs record offsets and timestamps, patched (doubles where exact, kafkajs Longs elsewhere)', () => {
  const one = (offsetDelta: number, timestampDelta: bigint, headers?: Headers): Encoded =>
    Record({ offsetDelta, timestampDelta: Long.fromValue(timestampDelta), key: Buffer.from('k'), value: Buffer.from('v'), ...(headers ? { headers } : {}) });

  it('gives every record the exact offset and timestamp: small, negative and 64-bit deltas, bases past 2^53', async () => {
    const deltas = [0n, 1n, -1n, 63n, 64n, -64n, 127n, 128n, -5_000n, 2n ** 40n, -(2n ** 45n), 2n ** 47n - 1n, 2n ** 48n, 2n ** 55n, -(2n ** 62n)];
    const cases = [
      { firstOffset: 0n, firstTimestamp: 1_765_000_000_000n },
      { firstOffset: 123_456_789n, firstTimestamp: -1n },
      // The sums cross 2^53: the first records' are exact doubles, the later ones must come from the Long path.
      { firstOffset: 2n ** 53n - 3n, firstTimestamp: 2n ** 53n - 2n },
      { firstOffset: 2n ** 62n, firstTimestamp: 2n ** 62n },
    ];
    for (const c of cases) {
      const records = deltas.map((d, i) => one(i, d));
      const decoded = await decodeMessages(
        await fetched(records, { firstOffset: Long.fromString(String(c.firstOffset)), firstTimestamp: Long.fromString(String(c.firstTimestamp)) }),
      );
      assert.deepEqual(
        decoded.map((m) => [m.offset, m.timestamp]),
        deltas.map((d, i) => [String(c.firstOffset + BigInt(i)), String(c.firstTimestamp + d)]),
        `first offset ${c.firstOffset}, first timestamp ${c.firstTimestamp}`,
      );
    }
  });

  it('reads the key, value and headers after a delta of any length, and gives log-append time as the batch says', async () => {
    const records = [one(0, 2n ** 56n, { a: Buffer.from('1') }), one(1, 3n, {}), one(2, -(2n ** 20n), { b: [Buffer.from('x'), Buffer.from('y')] })];
    const createTime = await decodeMessages(await fetched(records, { firstOffset: Long.fromString('10'), firstTimestamp: Long.fromString('1000') }));
    assert.deepEqual(
      createTime.map((m) => m.timestamp),
      [String(1000n + 2n ** 56n), '1003', String(1000n - 2n ** 20n)],
    );
    const logAppend = await decodeMessages(
      await fetched(records, {
        firstOffset: Long.fromString('10'),
        firstTimestamp: Long.fromString('1000'),
        maxTimestamp: Long.fromString('5000'),
        logAppendTime: true,
      }),
    );
    assert.deepEqual(
      logAppend.map((m) => [m.offset, m.timestamp, m.key.toString(), m.value.toString(), JSON.stringify(m.headers)]),
      [
        ['10', '5000', 'k', 'v', JSON.stringify({ a: Buffer.from('1') })],
        ['11', '5000', 'k', 'v', '{}'],
        ['12', '5000', 'k', 'v', JSON.stringify({ b: [Buffer.from('x'), Buffer.from('y')] })],
      ],
    );
  });
});

describe('kafkajs record header counts, patched (as readVarIntArray read them)', () => {
  const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
    decoder: unknown,
    batchContext: Record<string, unknown>,
  ) => { offset: string; key: unknown; headers: Record<string, unknown> };
  // attributes 0, timestamp delta 0, offset delta 0, key null, value null (zigzag -1 = 1), then the header count.
  const recordWithCount = (zigzagCount: number): unknown => new Decoder(Buffer.from([0, 0, 0, 1, 1, zigzagCount]));
  const batch = { firstOffset: '7', firstTimestamp: '1000' };

  it('reads a count of 0 or -1 (null) as no headers, and refuses a count below -1 as kafkajs did', () => {
    assert.deepEqual(decodeRecord(recordWithCount(0), batch).headers, {});
    assert.deepEqual(decodeRecord(recordWithCount(1), batch).headers, {});
    assert.equal(decodeRecord(recordWithCount(1), batch).offset, '7');
    // Found in review: `count <= 0` took -2 for no headers; the unpatched decoder threw (new Array(-2)).
    assert.throws(() => decodeRecord(recordWithCount(3), batch), RangeError);
  });
});

describe('the start-up check that the patch is applied', () => {
  it('finds every patched file patched in this install, and names a file that is not', () => {
    assert.deepEqual(unpatchedKafkajsFiles(), []);
    // The decoders and the consumer's coordinator lookup (ADR 0036 and its addendum).
    assert.ok(PATCHED_KAFKAJS_FILES.includes('kafkajs/src/consumer/offsetManager/index.js'));
    const unpatched = 'kafkajs/src/protocol/messageSet/decoder.js';
    assert.deepEqual(
      unpatchedKafkajsFiles((f) => (f === unpatched ? 'records.push(...batch)' : '// cdr-pipeline patch')),
      [unpatched],
    );
    assert.equal(
      unpatchedKafkajsFiles(() => {
        throw new Error('ENOENT');
      }).length,
      PATCHED_KAFKAJS_FILES.length,
      'an unreadable file counts as unpatched',
    );
  });
});
