import { createHash } from 'node:crypto';
import type { RowShape } from '../../core/index.ts';
import { RowBinaryEncoder, RowBinaryValueError, rowBinary } from './rowBinary.ts';

/**
 * Rows serialised before they reach the storage handle: ingest's prepare workers turn a batch into the bytes the
 * engine reads (`Storage.shapedInsertFormat`) off the main thread, and hand over only those bytes and what the
 * consumer loop needs to name the insert (how many rows, the digest of their identities).
 */
export interface EncodedRows {
  readonly kind: 'encoded';
  readonly format: 'RowBinary' | 'JSONCompactEachRow';
  readonly body: Uint8Array;
  readonly count: number;
  /** `digestOf` over the rows' identities: the same deduplication token the rows as objects would give. */
  readonly digest: string;
  /** Set when a value did not fit its column: the insert is refused as `record_rejected` (the loop then splits the batch). */
  readonly rejected?: string;
  /** Source offsets the rows came from (for benchmarks timing produce → queryable; not personal data). */
  readonly offsets?: { readonly partition: number; readonly min: number; readonly max: number };
}

export function isEncodedRows(rows: unknown): rows is EncodedRows {
  return typeof rows === 'object' && rows !== null && (rows as { kind?: unknown }).kind === 'encoded';
}

/** How many rows an insert carries, whichever form they are in. */
export function rowCountOf(rows: readonly object[] | EncodedRows): number {
  return isEncodedRows(rows) ? rows.count : rows.length;
}

/** A short digest of the rows' identities, in order: the content part of an insert's deduplication token. */
export function digestOf<T>(rows: readonly T[], identity: (row: T) => string): string {
  const digest = new RowDigest();
  for (const r of rows) digest.add(identity(r));
  return digest.finish();
}

/** `digestOf` one identity at a time (the same digest for the same identities in the same order). */
export class RowDigest {
  private readonly h = createHash('sha1');
  // The same bytes as one `update(identity)` and one `update('\n')` per row, in a call per 512 rows (a call into the
  // hash costs more than hashing one identity).
  private readonly chunk: string[] = [];

  add(identity: string): void {
    this.chunk.push(identity, '\n');
    if (this.chunk.length >= 1024) this.flush();
  }

  finish(): string {
    this.flush();
    return this.h.digest('hex').slice(0, 20);
  }

  private flush(): void {
    if (this.chunk.length === 0) return;
    this.h.update(this.chunk.join(''));
    this.chunk.length = 0;
  }
}

/**
 * Rows in the bytes a storage of `format` takes (`Storage.shapedInsertFormat`): RowBinary for the embedded engine,
 * JSONCompactEachRow lines for a server. `ends`, when given, receives each row's end offset. Throws
 * RowBinaryValueError for a value its column cannot hold.
 */
export function encodeRows<T>(rows: readonly T[], shape: RowShape<T>, format: EncodedRows['format'], ends?: number[]): Buffer {
  if (format === 'RowBinary') return rowBinary(rows, shape.columns, shape.types, shape.tuple, 256, ends);
  const lines = new Array<string>(rows.length);
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const line = `${JSON.stringify(shape.tuple(rows[i]!))}\n`;
    lines[i] = line;
    at += Buffer.byteLength(line);
    ends?.push(at);
  }
  return Buffer.from(lines.join(''));
}

/**
 * Rows of one shape encoded as they are made, for `EncodedRows`: `encodeRows`' bytes and `digestOf`'s digest, without
 * the rows kept until the end (they die young; benchmarks/results/rows-die-young-2026-12-06.md). The first value a
 * column cannot hold (RowBinaryValueError) marks the whole insert refused, as `encodeRows` throwing did: the rows after
 * it are counted, not encoded.
 */
export class RowsEncoder<T> {
  private readonly binary: RowBinaryEncoder<T> | undefined;
  private readonly lines: string[] = [];
  private readonly digest = new RowDigest();
  private count = 0;
  private rejected: string | undefined;

  constructor(
    private readonly shape: RowShape<T>,
    private readonly format: EncodedRows['format'],
    private readonly identity: (row: T) => string,
    sizeHint = 1024,
  ) {
    this.binary = format === 'RowBinary' ? new RowBinaryEncoder(shape.columns, shape.types, shape.tuple, sizeHint) : undefined;
  }

  add(row: T): void {
    this.count++;
    if (this.rejected !== undefined) return;
    try {
      if (this.binary) this.binary.append(row);
      else this.lines.push(`${JSON.stringify(this.shape.tuple(row))}\n`);
    } catch (err) {
      if (!(err instanceof RowBinaryValueError)) throw err;
      this.rejected = err.message;
      return;
    }
    this.digest.add(this.identity(row));
  }

  finish(): EncodedRows {
    const { format, count } = this;
    if (this.rejected !== undefined) return { kind: 'encoded', format, body: new Uint8Array(0), count, digest: '', rejected: this.rejected };
    const body = this.binary ? this.binary.finish() : Buffer.from(this.lines.join(''));
    return { kind: 'encoded', format, body, count, digest: this.digest.finish() };
  }
}
