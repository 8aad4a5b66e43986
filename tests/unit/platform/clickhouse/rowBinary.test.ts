/**
 * The RowBinary writer byte for byte: LEB128 string lengths either side of each boundary, two's complement 64-bit
 * integers from safe numbers and from decimal strings, nullables, dates, and a clear error (naming the column, never
 * the value) for anything its type cannot hold. The engine reading the same bytes back is
 * tests/integration/platform/rowBinary.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rowBinary, rowBinaryStrings, RowBinaryValueError, type RowBinaryType } from '../../../../services/platform/clickhouse/rowBinary.ts';

function one(type: RowBinaryType, value: unknown): Buffer {
  return rowBinary([value], ['c'], [type], (v) => [v]);
}

function leb128(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function int64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return b;
}

describe('rowBinary', () => {
  it('writes a string as its UTF-8 length (LEB128) and bytes, at every length boundary and in every script', () => {
    const samples = ['', 'a', 'x'.repeat(42), 'x'.repeat(43), 'x'.repeat(127), 'x'.repeat(128), 'é'.repeat(64), 'x'.repeat(16_383), 'x'.repeat(16_384)];
    samples.push('東京'.repeat(30), '📞'.repeat(21), '📞'.repeat(22), 'nul\u0000 nl\n tab\t quote" backslash\\', 'ünïcödé');
    for (const s of samples) {
      const bytes = Buffer.from(s, 'utf8');
      assert.deepEqual(one('String', s), Buffer.concat([leb128(bytes.length), bytes]), `length ${s.length}`);
    }
  });

  it('writes short strings with any character after ASCII ones as UTF-8 (the byte-by-byte path hands them over whole)', () => {
    const samples = ['abc', 'abcé', 'é', 'ab\u007f', 'ab\u0080', 'x'.repeat(41) + 'é', '+49 030 1234567\u00a0', 'a📞', 'Zürich', '\ud800x'];
    for (const s of samples) {
      const bytes = Buffer.from(s, 'utf8');
      assert.deepEqual(one('String', s), Buffer.concat([leb128(bytes.length), bytes]), JSON.stringify(s));
    }
    // Row after row, a non-ASCII string between ASCII ones leaves the others intact.
    const rows = ['ab', 'cé', 'de'];
    const out = rowBinary(rows, ['c'], ['String'], (v) => [v]);
    assert.deepEqual(out, Buffer.concat(rows.map((r) => Buffer.concat([leb128(Buffer.byteLength(r)), Buffer.from(r, 'utf8')]))));
  });

  it('writes Int64 and DateTime64 in two’s complement, negatives and the safe-integer ends included', () => {
    for (const v of [
      0,
      1,
      -1,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 32,
      -(2 ** 32),
      2 ** 40 + 7,
      Date.UTC(2028, 1, 29, 23, 59, 59, 999),
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ]) {
      assert.deepEqual(one('Int64', v), int64(BigInt(v)), String(v));
      assert.deepEqual(one('DateTime64', v), int64(BigInt(v)), String(v));
    }
  });

  it('writes UInt64 from numbers and from decimal strings past 2^53 (Kafka offsets)', () => {
    const expect = (v: bigint): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    };
    assert.deepEqual(one('UInt64', 5), expect(5n));
    assert.deepEqual(one('UInt64', '0'), expect(0n));
    assert.deepEqual(one('UInt64', '9007199254740993'), expect(9007199254740993n));
    assert.deepEqual(one('UInt64', '18446744073709551615'), expect(18446744073709551615n));
  });

  it('writes UInt8, UInt32, Int32, Bool, nullable timestamps and dates', () => {
    assert.deepEqual(one('UInt8', 0), Buffer.from([0]));
    assert.deepEqual(one('UInt8', 255), Buffer.from([0xff]));
    assert.deepEqual(one('UInt32', 0xffffffff), Buffer.from([0xff, 0xff, 0xff, 0xff]));
    assert.deepEqual(one('Int32', -1), Buffer.from([0xff, 0xff, 0xff, 0xff]));
    assert.deepEqual(one('Int32', 2 ** 31 - 1), Buffer.from([0xff, 0xff, 0xff, 0x7f]));
    assert.deepEqual(one('Int32', -(2 ** 31)), Buffer.from([0, 0, 0, 0x80]));
    assert.deepEqual(one('Int32', 258), Buffer.from([2, 1, 0, 0]));
    assert.deepEqual(one('Bool', true), Buffer.from([1]));
    assert.deepEqual(one('Bool', false), Buffer.from([0]));
    assert.deepEqual(one('Nullable(DateTime64)', null), Buffer.from([1]));
    assert.deepEqual(one('Nullable(DateTime64)', 1000), Buffer.concat([Buffer.from([0]), int64(1000n)]));
    assert.deepEqual(one('Date', '1970-01-01'), Buffer.from([0, 0]));
    assert.deepEqual(one('Date', '2028-02-01'), Buffer.from([(Date.UTC(2028, 1, 1) / 86_400_000) & 0xff, (Date.UTC(2028, 1, 1) / 86_400_000) >> 8]));
  });

  it('writes each row’s Date, however the values repeat or change between rows (the last one is kept)', () => {
    const dates = ['2026-12-01', '2026-12-01', '2026-11-01', '2026-12-01', '1970-01-01', '2026-11-01', '2026-11-01'];
    const days = (d: string): Buffer => {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(Date.parse(`${d}T00:00:00Z`) / 86_400_000);
      return b;
    };
    assert.deepEqual(
      rowBinary(dates, ['month'], ['Date'], (d) => [d]),
      Buffer.concat(dates.map(days)),
    );
    // A bad value after good ones is refused, even right after the same good one; and a good one after a bad one.
    assert.throws(() => rowBinary(['2026-12-01', '2026-12-01', '2026-13-01'], ['month'], ['Date'], (d) => [d]), RowBinaryValueError);
    assert.throws(() => rowBinary(['2026-12-01', 'x', '2026-12-01'], ['month'], ['Date'], (d) => [d]), RowBinaryValueError);
    assert.throws(() => rowBinary(['2026-12-01', null], ['month'], ['Date'], (d) => [d]), RowBinaryValueError);
  });

  it('rowBinaryStrings gives what rowBinary gives for a one-column String table (any length, any script)', () => {
    const values = ['', 'a', "it's \\ back", 'ünï-😀', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(20_000)];
    assert.deepEqual(
      rowBinaryStrings(values, 1),
      rowBinary(values, ['id'], ['String'], (v) => [v]),
    );
    assert.equal(rowBinaryStrings([]).length, 0);
  });

  it('writes the columns of a row in order, row after row', () => {
    const rows = [
      { a: 'x', b: 1, c: true },
      { a: 'yz', b: 2, c: false },
    ];
    const bytes = rowBinary(rows, ['a', 'b', 'c'], ['String', 'UInt32', 'Bool'], (r) => [r.a, r.b, r.c]);
    assert.deepEqual(bytes, Buffer.from([1, 0x78, 1, 0, 0, 0, 1, 2, 0x79, 0x7a, 2, 0, 0, 0, 0]));
  });

  it('grows past its first buffer without losing bytes', () => {
    const rows = Array.from({ length: 2_000 }, (_, i) => `${i}:${'w'.repeat(i % 300)}`);
    const bytes = rowBinary(rows, ['s'], ['String'], (s) => [s], 1);
    assert.deepEqual(bytes, Buffer.concat(rows.map((s) => Buffer.concat([leb128(Buffer.byteLength(s)), Buffer.from(s)]))));
  });

  it('refuses a value its type cannot hold, naming the column and not the value', () => {
    const bad: [RowBinaryType, unknown][] = [
      ['String', 12],
      ['String', null],
      ['Bool', 'true'],
      ['UInt8', 256],
      ['UInt8', -1],
      ['UInt8', 1.5],
      ['UInt32', -1],
      ['UInt32', 2 ** 32],
      ['UInt32', 1.5],
      ['Int32', 2 ** 31],
      ['Int32', -(2 ** 31) - 1],
      ['Int32', 0.5],
      ['Int32', '7'],
      ['UInt64', -3],
      ['UInt64', '18446744073709551616'],
      ['UInt64', '12a'],
      ['Int64', 2 ** 53],
      ['Int64', Number.NaN],
      ['DateTime64', 1.25],
      ['DateTime64', null],
      ['Nullable(DateTime64)', '2028-01-01'],
      ['Date', '2028-13-45'],
      ['Date', '+0+12-01-01'],
    ];
    for (const [type, value] of bad) {
      assert.throws(
        () => rowBinary([{ secret: value }], ['secret_column'], [type], (r) => [r.secret]),
        (err: unknown) => err instanceof RowBinaryValueError && err.message.includes('secret_column') && !err.message.includes(String(value)),
        `${type} ${String(value)}`,
      );
    }
  });
});
