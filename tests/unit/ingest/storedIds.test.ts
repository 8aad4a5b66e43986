import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RowBinaryStrings } from '../../../services/ingest/storedIds.ts';

function rowBinary(values: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    const bytes = Buffer.from(v, 'utf8');
    const len: number[] = [];
    let n = bytes.length;
    do {
      len.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    parts.push(Buffer.from(len), bytes);
  }
  return Buffer.concat(parts);
}

describe('RowBinaryStrings (reading the stored cdr_ids back in pieces)', () => {
  const values = ['c-1', '', 'é通話😀', 'x'.repeat(200), 'y'.repeat(20_000), '\u0000', 'last'];
  const bytes = rowBinary(values);

  it('reads every value whatever the piece size, across length prefixes and multi-byte characters', () => {
    for (const size of [1, 2, 3, 7, 64, 1000, bytes.length]) {
      const got: string[] = [];
      const reader = new RowBinaryStrings((v) => got.push(v));
      for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
      reader.end();
      assert.deepEqual(got, values, `pieces of ${size}`);
    }
  });

  it('says so when the input ends inside a value', () => {
    const reader = new RowBinaryStrings(() => undefined);
    reader.push(bytes.subarray(0, bytes.length - 2));
    assert.throws(() => reader.end(), /2 bytes left|bytes left/);
  });
});
