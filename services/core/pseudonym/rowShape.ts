/**
 * A table's columns in insert order and a row's values in that order: rows cross into ClickHouse as tuples
 * (JSONCompactEachRow), half the bytes of objects (benchmarks/RESULTS.md).
 */
export interface RowShape<T> {
  readonly columns: readonly (keyof T & string)[];
  tuple(row: T): unknown[];
}
