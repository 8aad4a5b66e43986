/**
 * ClickHouse RowBinary, written by hand for the hot tables: the engine copies the values into its columns instead
 * of parsing JSON text (benchmarks/results/ab-rowbinary-2026-12-02.md). Pure: rows in, bytes out.
 *
 * Only the column types the hot tables use are supported. A LowCardinality(String) column takes a plain String in
 * RowBinary; an Enum, Decimal or Array column needs a type of its own here first. The shapes are checked against the
 * real tables' columns (tests/integration/storage/rowBinary.test.ts), so a migration that changes a type fails there,
 * not in production.
 */

import type { RowBinaryType } from '../../core/index.ts';

export type { RowBinaryType };

const TWO_32 = 4_294_967_296;
const MS_PER_DAY = 86_400_000;

/** Thrown when a value does not fit its column (storage turns it into `record_rejected`, as for unparsable text). */
export class RowBinaryValueError extends Error {
  constructor(
    readonly column: string,
    readonly type: RowBinaryType,
  ) {
    // The value itself is not in the message: it may be an identifier.
    super(`a value of column ${column} does not fit ${type}`);
    this.name = 'RowBinaryValueError';
  }
}

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, size));
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  uint32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** A signed 64-bit integer from a safe integer: low and high 32-bit halves, two's complement. */
  int64(v: number): void {
    this.ensure(8);
    const lo = v >>> 0; // v mod 2^32, also for negatives
    const hi = Math.floor(v / TWO_32); // floor keeps two's complement for negatives
    this.buf.writeUInt32LE(lo, this.pos);
    this.buf.writeInt32LE(hi, this.pos + 4);
    this.pos += 8;
  }

  string(s: string): void {
    // A UTF-16 code unit takes at most 3 UTF-8 bytes: short strings (ids, tokens, codes) get their one-byte length
    // after the bytes are written, longer ones are measured first.
    const most = s.length * 3;
    if (most < 128) {
      this.ensure(most + 1);
      // ASCII byte by byte: for strings this short a loop costs less than a call into the runtime (avsc does the
      // same). The first other character hands the whole string to Buffer#write.
      const buf = this.buf;
      const at = this.pos + 1;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      const n = i === s.length ? i : buf.write(s, at, 'utf8');
      buf[this.pos] = n;
      this.pos = at + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 5);
    let len = n;
    while (len >= 0x80) {
      this.buf[this.pos++] = (len & 0x7f) | 0x80;
      len >>>= 7;
    }
    this.buf[this.pos++] = len;
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

function isSafeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** A UInt64 given as a safe integer or as a decimal string (Kafka offsets are strings). */
function uint64Of(v: unknown): number | bigint | null {
  if (isSafeInteger(v)) return v >= 0 ? v : null;
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
    const b = BigInt(v);
    return b < 2n ** 64n ? b : null;
  }
  return null;
}

/** `YYYY-MM-DD` → days since 1970-01-01 (a ClickHouse Date), or null. */
function daysOf(v: unknown): number | null {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return null;
  const ms = Date.parse(`${v}T00:00:00Z`);
  if (!Number.isFinite(ms)) return null;
  const days = ms / MS_PER_DAY;
  return days >= 0 && days <= 0xffff ? days : null;
}

/**
 * The rows as RowBinary, values taken by `tuple` in the order of `columns`, encoded as `types` says. Throws
 * RowBinaryValueError (naming the column, never the value) for a value its type cannot hold.
 */
export function rowBinary<T>(
  rows: readonly T[],
  columns: readonly string[],
  types: readonly RowBinaryType[],
  tuple: (row: T) => unknown[],
  bytesPerRowHint = 256,
  /** When given, receives each row's end offset in the output (rows can then be cut apart without parsing). */
  ends?: number[],
): Buffer {
  const encoder = new RowBinaryEncoder(columns, types, tuple, rows.length * bytesPerRowHint);
  for (const row of rows) {
    encoder.append(row);
    ends?.push(encoder.length);
  }
  return encoder.finish();
}

/**
 * `rowBinary` one row at a time: a caller that makes its rows one by one writes each as it is made, and the row object
 * dies young instead of living, with a whole batch of others, until the batch is encoded (ingest's prepare work:
 * benchmarks/results/rows-die-young-2026-12-06.md).
 */
export class RowBinaryEncoder<T> {
  private readonly w: Writer;
  /** A batch's Date values are mostly one month's first day: the last one's days are kept, not parsed again per row. */
  private lastDate: unknown;
  private lastDays: number | null = null;

  constructor(
    private readonly columns: readonly string[],
    private readonly types: readonly RowBinaryType[],
    private readonly tuple: (row: T) => unknown[],
    sizeHint = 1024,
  ) {
    if (types.length !== columns.length) throw new Error(`rowBinary: ${columns.length} columns but ${types.length} types`);
    this.w = new Writer(sizeHint);
  }

  /** Bytes written so far (the end offset of the last row appended). */
  get length(): number {
    return this.w.pos;
  }

  /**
   * Writes one row. A value its column cannot hold throws RowBinaryValueError and leaves the output as it was before
   * the row (no half row).
   */
  append(row: T): void {
    const { w, types, columns } = this;
    const rowStart = w.pos;
    const values = this.tuple(row);
    try {
      for (let c = 0; c < types.length; c++) {
        const v = values[c];
        const type = types[c]!;
        switch (type) {
          case 'String':
            if (typeof v !== 'string') throw new RowBinaryValueError(columns[c]!, type);
            w.string(v);
            break;
          case 'Bool':
            if (typeof v !== 'boolean') throw new RowBinaryValueError(columns[c]!, type);
            w.byte(v ? 1 : 0);
            break;
          case 'UInt8':
            if (!isSafeInteger(v) || v < 0 || v > 0xff) throw new RowBinaryValueError(columns[c]!, type);
            w.byte(v);
            break;
          case 'UInt32':
            if (!isSafeInteger(v) || v < 0 || v > 0xffffffff) throw new RowBinaryValueError(columns[c]!, type);
            w.uint32(v);
            break;
          case 'Int32':
            if (!isSafeInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RowBinaryValueError(columns[c]!, type);
            w.ensure(4);
            w.buf.writeInt32LE(v, w.pos);
            w.pos += 4;
            break;
          case 'UInt64': {
            const n = uint64Of(v);
            if (n === null) throw new RowBinaryValueError(columns[c]!, type);
            if (typeof n === 'number') w.int64(n);
            else {
              w.ensure(8);
              w.buf.writeBigUInt64LE(n, w.pos);
              w.pos += 8;
            }
            break;
          }
          case 'Int64':
          case 'DateTime64':
            if (!isSafeInteger(v)) throw new RowBinaryValueError(columns[c]!, type);
            w.int64(v);
            break;
          case 'Nullable(DateTime64)':
            if (v === null || v === undefined) w.byte(1);
            else {
              if (!isSafeInteger(v)) throw new RowBinaryValueError(columns[c]!, type);
              w.byte(0);
              w.int64(v);
            }
            break;
          case 'Date': {
            if (v !== this.lastDate) {
              this.lastDays = daysOf(v);
              this.lastDate = v;
            }
            const days = this.lastDays;
            if (days === null) throw new RowBinaryValueError(columns[c]!, type);
            w.ensure(2);
            w.buf.writeUInt16LE(days, w.pos);
            w.pos += 2;
            break;
          }
        }
      }
    } catch (err) {
      w.pos = rowStart;
      throw err;
    }
  }

  /** The rows written, as one buffer (a view of the encoder's own: append nothing after). */
  finish(): Buffer {
    return this.w.buf.subarray(0, this.w.pos);
  }
}

/** Strings as one-column RowBinary rows (a `String` column): no tuple per value, as `rowBinary` would make. */
export function rowBinaryStrings(values: readonly string[], bytesPerValueHint = 40): Buffer {
  const w = new Writer(values.length * bytesPerValueHint);
  for (const v of values) w.string(v);
  return w.buf.subarray(0, w.pos);
}
