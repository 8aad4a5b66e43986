/**
 * Rows encoded one at a time (`RowsEncoder`, `RowBinaryEncoder`) give the bytes and digest of encoding the whole batch
 * at once (`encodeRows`, `digestOf`), in both insert formats, and a value its column cannot hold refuses the insert as
 * `encodeRows` throwing did.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RowShape } from '../../../../services/core/index.ts';
import { digestOf, encodeRows, RowDigest, RowsEncoder } from '../../../../services/platform/clickhouse/encodedRows.ts';
import { RowBinaryEncoder, RowBinaryValueError, rowBinary } from '../../../../services/platform/clickhouse/rowBinary.ts';

interface Row {
  id: string;
  month: string;
  n: number;
  at: number | null;
  ok: boolean;
}

const SHAPE: RowShape<Row> = {
  columns: ['id', 'month', 'n', 'at', 'ok'],
  types: ['String', 'Date', 'UInt64', 'Nullable(DateTime64)', 'Bool'],
  tuple: (r) => [r.id, r.month, r.n, r.at, r.ok],
};
const identity = (r: Row): string => `${r.id}/${r.n}`;

function rows(count: number): Row[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i % 7 === 0 ? `zürich-${i}-${'x'.repeat(i % 150)}` : `id-${i}`,
    month: i % 500 < 250 ? '2026-11-01' : '2026-12-01',
    n: i * 1_000_003,
    at: i % 3 === 0 ? null : 1_764_547_200_000 + i,
    ok: i % 2 === 0,
  }));
}

describe('RowsEncoder', () => {
  for (const format of ['RowBinary', 'JSONCompactEachRow'] as const) {
    it(`${format}: row by row gives encodeRows' bytes and digestOf's digest (0, 1, 511, 512, 513 and 2,000 rows)`, () => {
      for (const count of [0, 1, 511, 512, 513, 2_000]) {
        const all = rows(count);
        const encoder = new RowsEncoder(SHAPE, format, identity, 16);
        for (const r of all) encoder.add(r);
        const out = encoder.finish();
        assert.equal(out.kind, 'encoded');
        assert.equal(out.format, format);
        assert.equal(out.count, count);
        assert.equal(out.rejected, undefined);
        assert.deepEqual(Buffer.from(out.body), encodeRows(all, SHAPE, format), `${count} rows`);
        assert.equal(out.digest, digestOf(all, identity), `${count} rows`);
      }
    });
  }

  it('RowBinary: a value its column cannot hold refuses the whole insert, names the column, and counts every row', () => {
    const all = rows(10);
    all[4] = { ...all[4]!, n: -1 };
    const encoder = new RowsEncoder(SHAPE, 'RowBinary', identity);
    for (const r of all) encoder.add(r);
    const out = encoder.finish();
    assert.equal(out.count, 10);
    assert.equal(out.body.length, 0);
    assert.equal(out.digest, '');
    assert.match(out.rejected ?? '', /column n does not fit UInt64/);
    assert.throws(() => encodeRows(all, SHAPE, 'RowBinary'), RowBinaryValueError, 'the batch path refuses the same rows');
  });

  it('a digest made identity by identity equals digestOf over the same identities', () => {
    const ids = Array.from({ length: 1_500 }, (_, i) => `cdr-${i}`);
    const d = new RowDigest();
    for (const id of ids) d.add(id);
    assert.equal(
      d.finish(),
      digestOf(ids, (s) => s),
    );
    assert.notEqual(
      new RowDigest().finish(),
      digestOf(['a'], (s) => s),
    );
  });
});

describe('RowBinaryEncoder', () => {
  it('a refused row leaves no half row behind: the rows around it are exactly those rows encoded alone', () => {
    const good = rows(6);
    const encoder = new RowBinaryEncoder(SHAPE.columns, SHAPE.types, SHAPE.tuple, 8);
    const ends: number[] = [];
    for (const [i, r] of good.entries()) {
      encoder.append(r);
      ends.push(encoder.length);
      if (i === 2) {
        // A string first (written), then a bad Date: the written part is taken back.
        const before = encoder.length;
        assert.throws(() => encoder.append({ ...r, id: 'written first', month: '2026-13-45x' }), /column month does not fit Date/);
        assert.equal(encoder.length, before);
      }
    }
    const whole = rowBinary(good, SHAPE.columns, SHAPE.types, SHAPE.tuple);
    assert.deepEqual(encoder.finish(), whole);
    const expectedEnds: number[] = [];
    rowBinary(good, SHAPE.columns, SHAPE.types, SHAPE.tuple, 256, expectedEnds);
    assert.deepEqual(ends, expectedEnds);
  });

  it('keeps the last Date right when the month changes and changes back', () => {
    const months = ['2026-11-01', '2026-12-01', '2026-11-01', '2027-01-01'];
    const encoder = new RowBinaryEncoder(['m'], ['Date'], (m: string) => [m]);
    for (const m of months) encoder.append(m);
    const days = months.map((m) => Date.parse(`${m}T00:00:00Z`) / 86_400_000);
    const out = encoder.finish();
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => out.readUInt16LE(i * 2)),
      days,
    );
  });
});
