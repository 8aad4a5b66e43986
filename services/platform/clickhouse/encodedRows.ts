import { createHash } from 'node:crypto';
import type { RowShape } from '../../core/index.ts';
import { rowBinary } from './rowBinary.ts';

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
  const h = createHash('sha1');
  // The same bytes as one `update(identity)` and one `update('\n')` per row, in a call per 512 rows (a call into the
  // hash costs more than hashing one identity).
  const chunk: string[] = [];
  for (const r of rows) {
    chunk.push(identity(r), '\n');
    if (chunk.length >= 1024) {
      h.update(chunk.join(''));
      chunk.length = 0;
    }
  }
  if (chunk.length > 0) h.update(chunk.join(''));
  return h.digest('hex').slice(0, 20);
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
