/**
 * A table's columns in insert order, each column's RowBinary type, and a row's values in that order: rows cross into
 * the embedded engine as RowBinary (platform/clickhouse/rowBinary.ts), into a server as JSONCompactEachRow tuples.
 */
export interface RowShape<T> {
  readonly columns: readonly (keyof T & string)[];
  /** How each column is encoded in RowBinary (same order as `columns`); checked against the real table by a test. */
  readonly types: readonly RowBinaryType[];
  readonly tuple: (row: T) => unknown[];
}

/**
 * The RowBinary encodings the hot tables need (`DateTime64` = DateTime64(3), milliseconds since the epoch;
 * a LowCardinality(String) column is a `String` in RowBinary).
 */
export type RowBinaryType = 'String' | 'Bool' | 'UInt8' | 'UInt32' | 'Int32' | 'UInt64' | 'Int64' | 'DateTime64' | 'Nullable(DateTime64)' | 'Date';
