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
  RecordBatch: (batch: { records: Encoded[]; lastOffsetDelta: number }) => Promise<Encoded>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: { offsetDelta: number; key: Buffer; value: Buffer; headers?: Headers }) => Encoded;
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const decodeMessages = require('kafkajs/src/protocol/requests/fetch/v4/decodeMessages') as (
  decoder: unknown,
) => Promise<{ offset: string; key: Buffer; value: Buffer; headers: Record<string, unknown> }[]>;

/** A fetch response's message set: its size, then the batch. */
async function fetched(records: Encoded[]): Promise<unknown> {
  const batch = (await RecordBatch({ records, lastOffsetDelta: records.length - 1 })).buffer;
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
